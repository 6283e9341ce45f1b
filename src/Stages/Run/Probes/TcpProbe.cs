using System.Net;
using System.Net.Sockets;

namespace Krustlet.Stages.Run.Probes;

/// <summary>
/// The kubelet's tcpSocket probe: a connection opened within the timeout is a success, and is closed at
/// once; anything else a failure worded as Go's dialer words it (<c>dial tcp 127.0.0.1:8080: connect:
/// connection refused</c>, <c>dial tcp 10.0.0.1:81: i/o timeout</c>). The timeout is wall-clock time, as
/// a connection's is: only when probes run is on the agent's clock.
/// </summary>
internal static class TcpProbe
{
    public static async Task<ProbeResult> ConnectAsync(string host, int port, TimeSpan timeout, CancellationToken stop)
    {
        var address = ProbeTarget.JoinHostPort(host, port);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stop);
        deadline.CancelAfter(timeout);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (IPAddress.TryParse(host, out var ip))
            {
                await socket.ConnectAsync(ip, port, deadline.Token);
            }
            else
            {
                await socket.ConnectAsync(new DnsEndPoint(host, port), deadline.Token);
            }

            return ProbeResult.Success();
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested)
        {
            return ProbeResult.Failure($"dial tcp {address}: i/o timeout");
        }
        catch (SocketException ex)
        {
            return ProbeResult.Failure(GoNetErrors.Dial(host, address, ex));
        }
    }
}

/// <summary>Socket errors in the words of Go's net package, which is what the kubelet's Events show.</summary>
internal static class GoNetErrors
{
    /// <summary>A failed dial of <paramref name="address"/> (host:port).</summary>
    public static string Dial(string host, string address, SocketException error) => error.SocketErrorCode switch
    {
        SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => $"dial tcp: lookup {host}: no such host",
        SocketError.TimedOut => $"dial tcp {address}: connect: connection timed out",
        _ => $"dial tcp {address}: connect: {Errno(error)}",
    };

    private static string Errno(SocketException error) => error.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "connection refused",
        SocketError.HostUnreachable => "no route to host",
        SocketError.NetworkUnreachable => "network is unreachable",
        SocketError.ConnectionReset => "connection reset by peer",
        SocketError.AddressNotAvailable => "cannot assign requested address",
        _ => error.Message.ToLowerInvariant(),
    };
}
