using System.Net;
using System.Net.Sockets;
using Krustlet.Stages.Run.Probes;

namespace Krustlet.Stages.Tests.Run.Probes;

/// <summary>The tcpSocket probe against a real listener: a connection is a success; a refusal is worded as Go's dialer.</summary>
[TestClass]
public sealed class TcpProbeTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_listening_port_is_a_success_and_the_connection_is_closed()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        var result = await TcpProbe.ConnectAsync("127.0.0.1", port, TimeSpan.FromSeconds(5), TestContext.CancellationToken);

        Assert.AreEqual(ProbeOutcome.Success, result.Outcome);
        using var accepted = await listener.AcceptSocketAsync(TestContext.CancellationToken);
        Assert.AreEqual(0, await accepted.ReceiveAsync(new byte[1], TestContext.CancellationToken), "the probe closed its connection");
    }

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task A_closed_port_is_a_refused_dial()
    {
        var port = HttpProbeTests.ClosedPort();

        var result = await TcpProbe.ConnectAsync("127.0.0.1", port, TimeSpan.FromSeconds(5), TestContext.CancellationToken);

        Assert.AreEqual(ProbeResult.Failure($"dial tcp 127.0.0.1:{port}: connect: connection refused"), result);
    }
}
