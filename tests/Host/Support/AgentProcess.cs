using System.Diagnostics;
using System.Text;

namespace Krustlet.Host.Tests.Support;

/// <summary>
/// The real <c>krustlet</c> executable (built next to the tests) run as a child process: its output is
/// kept, lines can be awaited, and it can be stopped with SIGTERM or killed with SIGKILL.
/// </summary>
internal sealed class AgentProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Lock _lock = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Seen)> _waiters = [];
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private AgentProcess(Process process)
    {
        _process = process;
    }

    public int Id => _process.Id;

    /// <summary>Everything the process wrote to stdout and stderr so far.</summary>
    public string Output
    {
        get
        {
            lock (_lock)
            {
                return _output.ToString();
            }
        }
    }

    public static AgentProcess Start(IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "krustlet.dll"));
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        // The agent reads only what the test gives it.
        foreach (var name in info.Environment.Keys.Where(k => k.StartsWith("KRUSTLET_", StringComparison.Ordinal)).ToList())
        {
            info.Environment.Remove(name);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var agent = new AgentProcess(process);
        process.OutputDataReceived += (_, e) => agent.Line(e.Data);
        process.ErrorDataReceived += (_, e) => agent.Line(e.Data);
        process.Exited += (_, _) => agent._exited.TrySetResult();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return agent;
    }

    /// <summary>Completes with the first output line, written already or to come, that matches.</summary>
    public Task<string> WaitForLineAsync(Func<string, bool> match, CancellationToken cancellationToken)
    {
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            var existing = _output.ToString().Split('\n').FirstOrDefault(match);
            if (existing is not null)
            {
                return Task.FromResult(existing);
            }

            _waiters.Add((match, seen));
        }

        return Exited(seen.Task, cancellationToken);
    }

    /// <summary>Sends SIGTERM and waits for the exit code.</summary>
    public async Task<int> TerminateAsync(CancellationToken cancellationToken)
    {
        Tool.Run("kill", "-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await _exited.Task.WaitAsync(cancellationToken);
        await _process.WaitForExitAsync(cancellationToken);
        return _process.ExitCode;
    }

    /// <summary>Kills the process with SIGKILL: nothing of it runs on.</summary>
    public async Task KillAsync(CancellationToken cancellationToken)
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private async Task<string> Exited(Task<string> seen, CancellationToken cancellationToken)
    {
        var first = await Task.WhenAny(seen, _exited.Task).WaitAsync(cancellationToken);
        if (first == seen)
        {
            return await seen;
        }

        await _process.WaitForExitAsync(cancellationToken); // the output is read to its end
        return seen.IsCompleted ? await seen : throw new InvalidOperationException($"krustlet exited ({_process.ExitCode}) before the line came. Its output:\n{Output}");
    }

    private void Line(string? line)
    {
        if (line is null)
        {
            return;
        }

        List<TaskCompletionSource<string>> matched = [];
        lock (_lock)
        {
            _output.Append(line).Append('\n');
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(line))
                {
                    matched.Add(_waiters[i].Seen);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var seen in matched)
        {
            seen.TrySetResult(line);
        }
    }
}
