using System.Globalization;
using System.Text.Json;

namespace Krustlet.Pipeline.Diagnostics;

/// <summary>
/// A JSON reader's error as a user reads it: where, counted from 1 as an editor counts, then what. The
/// reader's own message ends with a zero-based "LineNumber: 0 | BytePositionInLine: 12." (and a "Path:"
/// when it was deserializing), which is dropped.
/// </summary>
public static class JsonErrorText
{
    /// <param name="ex">What the reader threw.</param>
    /// <param name="withLine">Give the line too (a file); without it only the column (one line of a stream).</param>
    public static string Describe(JsonException ex, bool withLine = true)
    {
        ArgumentNullException.ThrowIfNull(ex);
        var what = ex.Message;
        var path = what.IndexOf(" Path:", StringComparison.Ordinal);
        var line = what.IndexOf(" LineNumber:", StringComparison.Ordinal);
        var cut = path >= 0 ? path : line;
        what = cut >= 0 ? what[..cut] : what;
        var column = (ex.BytePositionInLine ?? 0) + 1;
        var where = ex.LineNumber is not { } number ? string.Empty
            : withLine ? string.Create(CultureInfo.InvariantCulture, $"line {number + 1}, column {column}: ")
            : string.Create(CultureInfo.InvariantCulture, $"column {column}: ");
        return where + what;
    }
}
