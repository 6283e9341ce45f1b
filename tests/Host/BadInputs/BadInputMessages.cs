using System.Text.RegularExpressions;

namespace Krustlet.Host.Tests.BadInputs;

/// <summary>What the bad-input corpus checks of every message it collects: nothing a user cannot act on.</summary>
internal static partial class BadInputMessages
{
    /// <summary>Fails when a message carries an exception's text, a .NET type name or a stack frame.</summary>
    public static void AssertNoneLeaksAnException(IEnumerable<string> messages)
    {
        var leaks = messages.Where(m => Leak().IsMatch(m)).ToList();
        Assert.IsEmpty(leaks, "messages that leak an exception's text:\n" + string.Join("\n", leaks));
    }

    [GeneratedRegex(@"Exception|System\.[A-Z]|k8s\.Models|Krustlet\.[A-Z]|dictionary|Object reference|Operation is not valid|\bat [A-Z][\w.]+\(|Version=\d|PublicKeyToken", RegexOptions.CultureInvariant)]
    private static partial Regex Leak();
}
