using System.CommandLine;
using System.Reflection;

namespace Krustlet.Host;

/// <summary>The krustlet command line: <c>node</c>, <c>image</c>, <c>record</c> and <c>version</c>; the standalone and replay verbs follow.</summary>
public static class Program
{
    public static Task<int> Main(string[] args) => BuildCommand(Console.Out, Console.Error).Parse(args).InvokeAsync();

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
            SettingsCommand.Build(output),
        };
    }

    public static string AgentVersion =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static string WasmtimeVersion => Stages.Compile.WasmEngineHost.WasmtimeVersion;
}
