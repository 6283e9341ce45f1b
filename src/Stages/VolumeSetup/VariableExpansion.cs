using System.Text;

namespace Krustlet.Stages.VolumeSetup;

/// <summary>
/// Kubernetes' <c>$(VAR)</c> expansion of env values, command and args: <c>$(NAME)</c> becomes the
/// variable's value when it is defined and stays as written when it is not; <c>$$</c> is an escaped
/// <c>$</c>, so <c>$$(NAME)</c> stays <c>$(NAME)</c>; an unclosed <c>$(</c> stays as written.
/// </summary>
public static class VariableExpansion
{
    public static string Expand(string input, Func<string, string?> lookup)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(lookup);
        var output = new StringBuilder(input.Length);
        var i = 0;
        while (i < input.Length)
        {
            if (input[i] != '$' || i + 1 >= input.Length)
            {
                output.Append(input[i++]);
                continue;
            }

            var next = input[i + 1];
            if (next == '$')
            {
                output.Append('$');
                i += 2;
            }
            else if (next == '(')
            {
                var close = input.IndexOf(')', i + 2);
                if (close < 0)
                {
                    output.Append("$(");
                    i += 2;
                }
                else
                {
                    var name = input[(i + 2)..close];
                    output.Append(lookup(name) ?? $"$({name})");
                    i = close + 1;
                }
            }
            else
            {
                output.Append('$').Append(next);
                i += 2;
            }
        }

        return output.ToString();
    }
}
