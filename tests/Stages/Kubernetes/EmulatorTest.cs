using k8s;

namespace Krustlet.Stages.Tests.Kubernetes;

/// <summary>A test class with a fresh API emulator and a KubernetesClient pointed at it for every test.</summary>
public abstract class EmulatorTest
{
    protected ApiEmulator Api { get; private set; } = null!;

    protected k8s.Kubernetes Client { get; private set; } = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public async Task StartEmulator()
    {
        Api = await ApiEmulator.StartAsync(TestContext.CancellationToken);
        Client = new k8s.Kubernetes(new KubernetesClientConfiguration { Host = Api.Url });
    }

    [TestCleanup]
    public async Task StopEmulator()
    {
        Client.Dispose();
        await Api.DisposeAsync();
    }
}
