using Krustlet.Stages.Run;
using Krustlet.Stages.StatusReport;

namespace Krustlet.Stages.Tests.BadInputs;

/// <summary>
/// Part of the bad-input corpus (#18 item 5): modules an image can carry that cannot run, through the
/// real compile and run stages (real Wasmtime) together with a good pod. Each pod ends with the reason
/// and message the kubelet would give, its container's status agreeing; the good pod runs to
/// Succeeded.
/// </summary>
[TestClass]
public sealed partial class BadModuleCorpusTests
{
    public TestContext TestContext { get; set; } = null!;

    // What depends on the toolchain that built the fixture (its digest, code offsets) is masked.
    private static string Masked(string text) => Offsets().Replace(Digests().Replace(text, "sha256:…"), "0x…");

    [System.Text.RegularExpressions.GeneratedRegex("sha256:[0-9a-f]{64}")]
    private static partial System.Text.RegularExpressions.Regex Digests();

    [System.Text.RegularExpressions.GeneratedRegex("0x[0-9a-f]+")]
    private static partial System.Text.RegularExpressions.Regex Offsets();

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task Every_bad_module_fails_its_pod_alone_with_the_kubelets_reason()
    {
        var hello = WasmFixtures.C("hello");
        var helloBytes = File.ReadAllBytes(hello);
        (string Image, string Module, string Outcome)[] cases =
        [
            ("empty", WasmFixtures.File([]), "CreateContainerError: Compile: container main: image empty: not a WebAssembly module or component (no \\0asm header with a known version)"),
            ("text", WasmFixtures.File("hello, world\n"u8.ToArray()), "CreateContainerError: Compile: container main: image text: not a WebAssembly module or component (no \\0asm header with a known version)"),
            ("truncated", WasmFixtures.File(helloBytes[..(helloBytes.Length / 2)]), "CreateContainerError: Compile: container main: image truncated: WebAssembly module 'sha256:…' is not valid: failed to parse WebAssembly module: unexpected end-of-file (at offset 0x…)"),
            ("version-2", WasmFixtures.File([0x00, 0x61, 0x73, 0x6d, 0x02, 0x00, 0x00, 0x00]), "CreateContainerError: Compile: container main: image version-2: not a WebAssembly module or component (no \\0asm header with a known version)"),
            ("unknown-import", WasmFixtures.Wat("(module (import \"env\" \"nope\" (func)) (func (export \"_start\")))"), "exit 128 StartError: unknown import: `env::nope` has not been defined"),
            ("wrong-wasi-signature", WasmFixtures.Wat("(module (import \"wasi_snapshot_preview1\" \"fd_write\" (func (param i32))) (func (export \"_start\")))"), "exit 128 StartError: incompatible import type for `wasi_snapshot_preview1::fd_write`"),
            ("no-start", WasmFixtures.Wat("(module (memory (export \"memory\") 1))"), "exit 128 StartError: the module exports no _start function: it is not a WASI command"),
            ("start-with-params", WasmFixtures.Wat("(module (func (export \"_start\") (param i32)))"), "exit 128 StartError: the module's _start takes 1 parameter(s): a WASI command's _start takes none and returns nothing"),
            ("start-not-a-function", WasmFixtures.Wat("(module (global (export \"_start\") i32 (i32.const 0)))"), "exit 128 StartError: the module exports no _start function: it is not a WASI command"),
            ("traps-at-instantiation", WasmFixtures.Wat("(module (func $init unreachable) (start $init) (func (export \"_start\")))"), "exit 134 Error: wasm trap: unreachable, at 0x… - <unknown>!<wasm function 0>"),
            ("traps", WasmFixtures.Wat(Wat.Unreachable), "exit 134 Error: wasm trap: unreachable, at 0x… - <unknown>!<wasm function 4>"),
            ("exits-3", WasmFixtures.Wat(Wat.Exit(3)), "exit 3 Error: "),
            ("huge-memory", WasmFixtures.Wat("(module (memory 65536) (func (export \"_start\")))"), "exit 137 OOMKilled: the module's memory of 65536 pages needs 4294967296 bytes, over the node's per-container memory cap (Wasm:MaxContainerMemory) of 2147483648 bytes"),
            ("huge-table", WasmFixtures.Wat("(module (table 400000000 funcref) (func (export \"_start\")))"), "CreateContainerError: Compile: container main: image huge-table: WebAssembly module 'sha256:…' is not valid: module table does not fit in pooling allocator requirements: table index 0 has a minimum element size of 400000000 which exceeds the limit of 268435456"),
        ];
        var images = cases.ToDictionary(c => c.Image, c => c.Module);
        images["hello"] = hello;
        await using var harness = new RunHarness(images);
        var good = RunHarness.Pod("good");
        var pods = cases.Select(c => RunHarness.Pod(c.Image, images: [c.Image])).ToList();
        foreach (var pod in pods)
        {
            await harness.SubmitAsync(pod, TestContext.CancellationToken);
        }

        await harness.SubmitAsync(good, TestContext.CancellationToken);
        var wrong = new List<string>();
        var messages = new List<string>();
        for (var i = 0; i < cases.Length; i++)
        {
            var report = await harness.Writer.WaitForAsync(pods[i].Metadata.Uid, r => r.Kind == PodReportKind.Failed || r.Runtime?.Phase is PodPhase.Succeeded or PodPhase.Failed, TestContext.CancellationToken);
            var state = report.Runtime is { Containers.Count: > 0 } runtime ? runtime.Containers[0].State : null;
            var outcome = (report.Kind, state) switch
            {
                // Refused before it could start: the pod stays Pending, its container waiting with the pod's reason.
                (PodReportKind.Failed, WaitingState waiting) when waiting.Reason == report.Reason && waiting.Message == report.Message && report.Runtime!.Phase == PodPhase.Pending => $"{report.Reason}: {report.Message}",
                // Started and ended (restartPolicy Never): the pod Failed, its container terminated with the kubelet's reason and exit code.
                (_, TerminatedState terminated) when report.Runtime!.Phase == PodPhase.Failed => $"exit {terminated.ExitCode} {terminated.Reason}: {terminated.Message}",
                _ => $"unexpected: {report.Kind} {report.Reason} {report.Message} {report.Runtime?.Phase} {state}",
            };
            messages.Add(outcome);
            if (Masked(outcome) != cases[i].Outcome)
            {
                wrong.Add($"{cases[i].Image}: expected \"{cases[i].Outcome}\", got \"{outcome}\"");
            }
        }

        await harness.WaitForAsync(good, s => s.Phase == PodPhase.Succeeded, TestContext.CancellationToken);
        Assert.IsEmpty(wrong, string.Join("\n", wrong));
        Assert.IsFalse(messages.Any(m => m.Contains("Exception", StringComparison.Ordinal) || m.Contains("System.", StringComparison.Ordinal)), string.Join("\n", messages));
    }
}
