using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;
using k8s;

namespace Krustlet.Host.Tests.Certificates;

/// <summary><c>krustlet node --bootstrap-kubeconfig</c> from nothing to a working node, and a bootstrap kubeconfig that cannot be used.</summary>
[TestClass]
public sealed partial class TlsBootstrapTests
{
    private const string ServingLine = "kubelet API serving certificate signed by the cluster";

    public TestContext TestContext { get; set; } = null!;

    /// <summary>Output that opens a gate when a line containing the text is written.</summary>
    private sealed class GateWriter(string awaited) : StringWriter
    {
        private readonly Lock _lock = new();

        public TaskCompletionSource Seen { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override void WriteLine(string? value)
        {
            lock (_lock)
            {
                base.WriteLine(value);
            }

            if (value?.Contains(awaited, StringComparison.Ordinal) == true)
            {
                Seen.TrySetResult();
            }
        }

        public override Task WriteLineAsync(string? value)
        {
            WriteLine(value);
            return Task.CompletedTask;
        }

        public override string ToString()
        {
            lock (_lock)
            {
                return base.ToString();
            }
        }
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task With_only_a_bootstrap_kubeconfig_the_node_gets_its_certificates_joins_and_serves_the_clusters_certificate()
    {
        await using var api = await ApiEmulator.StartAsync(TestContext.CancellationToken);
        using var signer = new ClusterSigner(TimeProvider.System);
        api.AutoSigner = signer;
        var dir = Directory.CreateTempSubdirectory("krustlet-bootstrap-").FullName;
        var bootstrap = api.WriteKubeconfig(Path.Combine(dir, "bootstrap-kubeconfig"));
        var kubeconfig = Path.Combine(dir, "kubeconfig");
        string[] arguments = ["node", "--bootstrap-kubeconfig", bootstrap, "--kubeconfig", kubeconfig, "--node-name", "wasm-node", "--node-ip", "127.0.0.1", "--data-dir", Path.Combine(dir, "data"), "--address", "127.0.0.1", "--port", "0"];

        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken))
        {
            using var output = new GateWriter(ServingLine);
            var node = Program.BuildCommand(output).Parse(arguments).InvokeAsync(cancellationToken: stop.Token);
            await api.WaitForAsync("leases", "kube-node-lease", "wasm-node", _ => true, TestContext.CancellationToken);
            await output.Seen.Task.WaitAsync(TestContext.CancellationToken);

            // The kubeconfig uses the issued client certificate, and the node joined with it.
            var written = KubernetesClientConfiguration.BuildConfigFromConfigFile(kubeconfig);
            Assert.AreEqual(api.Url.TrimEnd('/'), written.Host.TrimEnd('/'));
            using (var clientCertificate = X509Certificate2.CreateFromPemFile(written.ClientCertificateFilePath!))
            {
                Assert.AreEqual("O=system:nodes, CN=system:node:wasm-node", clientCertificate.Subject);
                Assert.AreEqual(signer.Ca.Subject, clientCertificate.Issuer);
                Assert.IsTrue(clientCertificate.HasPrivateKey);
            }

            Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(written.ClientCertificateFilePath!), "the key is the agent's only");
            var csrs = api.All(ApiEmulator.CsrResource);
            CollectionAssert.AreEquivalent(new[] { "kubernetes.io/kube-apiserver-client-kubelet", "kubernetes.io/kubelet-serving" }, csrs.Select(c => c["spec"]!["signerName"]!.GetValue<string>()).ToArray());
            Assert.IsNotNull(api.Get("nodes", string.Empty, "wasm-node"));

            // The kubelet API presents the serving certificate the cluster's CA signed.
            var port = int.Parse(ApiLine().Match(output.ToString()).Groups["port"].Value, System.Globalization.CultureInfo.InvariantCulture);
            using var presented = await PresentedAsync(port);
            Assert.AreEqual(signer.Ca.Subject, presented.Issuer);
            Assert.AreEqual("O=system:nodes, CN=system:node:wasm-node", presented.Subject);
            using (var chain = new X509Chain())
            {
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(signer.Ca);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                Assert.IsTrue(chain.Build(presented), "it chains to the cluster's CA");
            }

            await stop.CancelAsync();
            Assert.AreEqual(0, await node, output.ToString());
        }

        // Started again: the kubeconfig and both certificates are kept, no new request.
        using (var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken))
        {
            File.Delete(bootstrap); // as kubeadm removes it once the node has joined
            using var output = new GateWriter(ServingLine);
            var node = Program.BuildCommand(output).Parse(arguments).InvokeAsync(cancellationToken: stop.Token);
            await output.Seen.Task.WaitAsync(TestContext.CancellationToken);
            Assert.HasCount(2, api.All(ApiEmulator.CsrResource));
            await stop.CancelAsync();
            Assert.AreEqual(0, await node, output.ToString());
        }

        Directory.Delete(dir, recursive: true);
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    [DataRow("clusters: [ this is not", "is not a usable kubeconfig")]
    [DataRow("apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n", "is not a usable kubeconfig")]
    [DataRow(null, "does not exist")]
    public async Task A_bootstrap_kubeconfig_that_cannot_be_used_is_one_clear_settings_error(string? content, string expected)
    {
        var dir = Directory.CreateTempSubdirectory("krustlet-bad-bootstrap-").FullName;
        var bootstrap = Path.Combine(dir, "bootstrap-kubeconfig");
        if (content is not null)
        {
            File.WriteAllText(bootstrap, content);
        }

        using var output = new StringWriter();
        using var error = new StringWriter();
        var exit = await Program.BuildCommand(output, error).Parse(["node", "--bootstrap-kubeconfig", bootstrap, "--kubeconfig", Path.Combine(dir, "kubeconfig"), "--data-dir", Path.Combine(dir, "data")]).InvokeAsync(cancellationToken: TestContext.CancellationToken);

        Assert.AreEqual(2, exit, error.ToString());
        StringAssert.Contains(error.ToString(), $"BootstrapKubeconfig: {bootstrap} {expected}");
        Assert.AreEqual(1, error.ToString().Trim().Split('\n').Length, "one message");
        Assert.IsFalse(File.Exists(Path.Combine(dir, "kubeconfig")), "nothing written");
        Directory.Delete(dir, recursive: true);
    }

    private async Task<X509Certificate2> PresentedAsync(int port)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port, TestContext.CancellationToken);
        await using var ssl = new SslStream(tcp.GetStream(), false, (_, certificate, _, _) => certificate is not null);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "127.0.0.1" }, TestContext.CancellationToken);
        return new X509Certificate2(ssl.RemoteCertificate!);
    }

    [GeneratedRegex(@"kubelet API on https://127\.0\.0\.1:(?<port>\d+)")]
    private static partial Regex ApiLine();
}
