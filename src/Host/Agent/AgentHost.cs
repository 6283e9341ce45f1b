using System.Diagnostics.Metrics;
using Krustlet.Host.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Krustlet.Host.Agent;

/// <summary>What a running mode gets from the host: logging, metrics and the clock.</summary>
public sealed record AgentContext(ILoggerFactory LoggerFactory, IMeterFactory MeterFactory, TimeProvider Time);

/// <summary>
/// Runs one of the agent's modes (<c>node</c>, <c>standalone</c>) as the hosted service of a .NET generic
/// host: console logging to stderr, <see cref="IMeterFactory"/> metrics, and a clean stop on SIGTERM or
/// SIGINT within the settings' shutdown deadline. The mode's own failure is the verb's error and exit code 1.
/// </summary>
public static class AgentHost
{
    /// <summary>Runs the mode until it ends or <paramref name="cancellationToken"/> fires; 0 on a clean stop, 1 when the mode failed.</summary>
    public static async Task<int> RunAsync(AgentSettings settings, TextWriter error, Func<AgentContext, CancellationToken, Task> mode, CancellationToken cancellationToken, LogLevel logLevel = LogLevel.Information)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(error);
        ArgumentNullException.ThrowIfNull(mode);
        var builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.SetMinimumLevel(logLevel);
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
        });
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Services.AddMetrics();
        builder.Services.AddSingleton(TimeProvider.System);

        // Room for the pipeline to drain, the pods to stop and the last statuses to be written.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = (settings.Pipeline.ShutdownTimeout * 2) + settings.Pipeline.CancellationGrace);
        var outcome = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        builder.Services.AddHostedService(services => new ModeService(services, mode, outcome));
        using var host = builder.Build();
        await host.RunAsync(cancellationToken);
        outcome.TrySetResult(null);
        if (await outcome.Task is { } failure)
        {
            await error.WriteLineAsync($"error: {failure.Message}");
            return 1;
        }

        return 0;
    }

    private sealed class ModeService(IServiceProvider services, Func<AgentContext, CancellationToken, Task> mode, TaskCompletionSource<Exception?> outcome) : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            var context = new AgentContext(services.GetRequiredService<ILoggerFactory>(), services.GetRequiredService<IMeterFactory>(), services.GetRequiredService<TimeProvider>());
            try
            {
                await mode(context, stoppingToken);
                outcome.TrySetResult(null);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                outcome.TrySetResult(null);
            }
#pragma warning disable CA1031 // The mode's failure is reported by the verb, with exit code 1.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                outcome.TrySetResult(ex);
            }
            finally
            {
                services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
            }
        }
    }
}
