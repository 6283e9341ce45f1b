using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Krustlet.Http.Benchmarks;

/// <summary>The hello handler, built from <c>hello.c</c> twice: for wasm32-wasi (the agent's) and natively (CGI).</summary>
internal static class Handler
{
    /// <summary>Compiles both binaries into <paramref name="directory"/> and checks the native one prints the CGI response.</summary>
    public static (string Wasm, string Native) Build(string directory)
    {
        var source = Path.Combine(AppContext.BaseDirectory, "hello.c");
        var wasm = Path.Combine(directory, "hello.wasm");
        var native = Path.Combine(directory, "hello-cgi");
        Tool.Run("clang", "--target=wasm32-wasi", "-O2", "-s", "-o", wasm, source);
        Tool.Run("clang", "-O2", "-s", "-o", native, source);
        var output = Tool.Run(native);
        if (output != "Content-Type: text/plain\r\n\r\nhello\n")
        {
            throw new BenchException($"{native} printed {Probe.Escape(output)}, not the CGI hello response");
        }

        return (wasm, native);
    }

    /// <summary>
    /// Writes <paramref name="wasm"/> as an OCI image layout naming it <paramref name="reference"/>, the way
    /// <c>examples/build.sh</c> does (a wasm artifact: config <c>application/vnd.wasm.config.v0+json</c>, one
    /// <c>application/vnd.wasm.content.layer.v1+wasm</c> layer), for <c>krustlet standalone --images</c>.
    /// </summary>
    public static void WriteLayout(string wasm, string layout, string reference)
    {
        var blobs = Path.Combine(layout, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        (string Digest, long Size) Put(byte[] content)
        {
            var hex = Convert.ToHexStringLower(SHA256.HashData(content));
            File.WriteAllBytes(Path.Combine(blobs, hex), content);
            return ("sha256:" + hex, content.Length);
        }

        var layer = Put(File.ReadAllBytes(wasm));
        var config = Put(Encoding.UTF8.GetBytes($"{{\"os\":\"wasip1\",\"architecture\":\"wasm\",\"layerDigests\":[\"{layer.Digest}\"]}}"));
        var manifest = Put(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.wasm.config.v0+json\",\"digest\":\"{config.Digest}\",\"size\":{config.Size}}},\"layers\":[{{\"mediaType\":\"application/vnd.wasm.content.layer.v1+wasm\",\"digest\":\"{layer.Digest}\",\"size\":{layer.Size},\"annotations\":{{\"org.opencontainers.image.title\":\"hello.wasm\"}}}}]}}")));
        File.WriteAllText(Path.Combine(layout, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        File.WriteAllText(Path.Combine(layout, "index.json"), string.Create(CultureInfo.InvariantCulture,
            $"{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"{manifest.Digest}\",\"size\":{manifest.Size},\"annotations\":{{\"org.opencontainers.image.ref.name\":\"{reference}\"}}}}]}}"));
    }
}

/// <summary>The agent as a target: <c>krustlet standalone</c> from the Release build of src/Host, with static handler pods.</summary>
internal static class AgentTarget
{
    /// <summary>The image reference the benchmark's layout names and its pods run.</summary>
    public const string Image = "bench.krustlet.dev/http-hello:v1";

    /// <summary>A static pod with one handler container: a port named <c>http</c> (issue #15) on <paramref name="port"/>.</summary>
    public static string Manifest(string name, int port) => string.Create(CultureInfo.InvariantCulture, $"""
        # The #15 benchmark's hello handler: the agent serves 127.0.0.1:{port}, a fresh instance per request.
        apiVersion: v1
        kind: Pod
        metadata:
          name: {name}
        spec:
          containers:
          - name: hello
            image: {Image}
            imagePullPolicy: IfNotPresent
            ports:
            - name: http
              containerPort: {port}

        """);

    /// <summary>Writes the manifests into <paramref name="directory"/>, each by a rename so the agent never reads half a file.</summary>
    public static void WritePods(string directory, IEnumerable<(string Name, int Port)> pods)
    {
        var staging = Path.Combine(Path.GetDirectoryName(directory)!, "staging");
        Directory.CreateDirectory(staging);
        foreach (var (name, port) in pods)
        {
            var file = Path.Combine(staging, name + ".yaml");
            File.WriteAllText(file, Manifest(name, port));
            File.Move(file, Path.Combine(directory, name + ".yaml"));
        }
    }

    /// <summary>
    /// Starts <c>dotnet krustlet.dll standalone MANIFESTS --images LAYOUT</c> with a data directory of its
    /// own, the kubelet API on a free loopback port, no pipeline page and no live table.
    /// </summary>
    public static Child Start(string label, string agentDll, string root, string layout, int maxPods, string? cpus)
    {
        var manifests = Path.Combine(root, "manifests");
        var data = Path.Combine(root, "data");
        Directory.CreateDirectory(manifests);
        Directory.CreateDirectory(data);
        string[] args =
        [
            agentDll, "standalone", manifests,
            "--images", layout,
            "--data-dir", data,
            "--address", "127.0.0.1",
            "--port", Ports.Free().ToString(CultureInfo.InvariantCulture),
            "--page-port", "-1",
            "--max-pods", maxPods.ToString(CultureInfo.InvariantCulture),
            "--no-table",
        ];
        return Child.Start(label, "dotnet", args, cpus, tailLines: 60);
    }

    /// <summary>
    /// What the agent saved about its pods (<c>DATA/state/*.json</c>: phase, container states, restarts),
    /// shortened, for an error message: says whether a handler pod ran as a plain container instead.
    /// </summary>
    public static string PodStates(string root)
    {
        var state = Path.Combine(root, "data", "state");
        var files = Directory.Exists(state) ? Directory.GetFiles(state, "*.json") : [];
        if (files.Length == 0)
        {
            return $"\n  no pod state saved in {state}";
        }

        var text = new StringBuilder(string.Create(CultureInfo.InvariantCulture, $"\n  pod state saved by the agent ({files.Length} pods, {state}):"));
        foreach (var file in files.Take(3))
        {
            var json = File.ReadAllText(file);
            text.Append("\n    ").Append(json.Length > 800 ? json[..800] + "…" : json);
        }

        return text.ToString();
    }

    /// <summary>Waits for the agent's "running the pods" line (images imported, pipeline and kubelet API up).</summary>
    public static async Task WaitRunningAsync(Child agent, TimeSpan timeout)
    {
        var running = agent.WaitForLineAsync("running the pods in");
        var deadline = Task.Delay(timeout);
        while (!running.IsCompleted && !deadline.IsCompleted)
        {
            if (agent.HasExited)
            {
                throw new BenchException($"{agent.Label} exited with code {agent.ExitCode} before it started running pods. Its output:\n{agent.Tail()}");
            }

            await Task.WhenAny(running, deadline, Task.Delay(100));
        }

        if (!running.IsCompleted)
        {
            throw new BenchException($"{agent.Label} did not print \"running the pods in\" within {timeout.TotalSeconds:0} s. Its output:\n{agent.Tail()}");
        }
    }
}
