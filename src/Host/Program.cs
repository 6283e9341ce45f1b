using System.CommandLine;
using System.Reflection;

namespace Krustlet.Host;

/// <summary>The krustlet command line: <c>node</c>, <c>standalone</c>, <c>replay</c>, <c>tune</c>, <c>image</c>, <c>record</c>, <c>settings</c> and <c>version</c>.</summary>
public static class Program
{
    /// <summary>
    /// On SIGTERM or SIGINT the running verb's token is cancelled and the verb gets this long to stop its
    /// pods and write their last statuses (its own deadline, <c>Pipeline:ShutdownTimeout</c>, is shorter).
    /// </summary>
    public static readonly TimeSpan TerminationTimeout = TimeSpan.FromMinutes(3);

    public static Task<int> Main(string[] args) =>
        BuildCommand(Console.Out, Console.Error).Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TerminationTimeout });

    public static RootCommand BuildCommand(TextWriter output, TextWriter? error = null)
    {
        var version = new Command("version", "Print the agent and runtime versions.");
        version.SetAction(_ =>
        {
            output.WriteLine($"krustlet {AgentVersion}");
            output.WriteLine($"runtime wasmtime://{WasmtimeVersion}");
            output.WriteLine($".NET {Environment.Version}");
            return 0;
        });

        return new RootCommand("Krustlet: a Kubernetes node agent that runs WebAssembly (WASI) pods with Wasmtime.")
        {
            version,
            ImageCommands.Build(output, error ?? output),
            RecordCommand.Build(output, error ?? output),
            NodeCommand.Build(output, error ?? output),
            StandaloneCommand.Build(output, error ?? output),
            ReplayCommand.Build(output, error ?? output),
            Tuning.TuneCommand.Build(output, error ?? output),
            SettingsCommand.Build(output),
        };
    }

    public static string AgentVersion =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static string WasmtimeVersion => Stages.Compile.WasmEngineHost.WasmtimeVersion;
}
