using System.Diagnostics;

namespace Krustlet.Tests.Shared;

/// <summary>Runs a command-line tool the tests need (clang, wat2wasm, htpasswd).</summary>
internal static class Tool
{
    /// <summary>Runs <paramref name="tool"/> and returns its standard output; throws with its error output when it fails.</summary>
    public static string Run(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {tool}");
        var stderr = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0
            ? output
            : throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.GetAwaiter().GetResult()}");
    }
}
