using System.Text.Json;
using k8s;
using k8s.Models;
using Krustlet.Pipeline.Events;
using Krustlet.Pipeline.Replay;

namespace Krustlet.Stages.PodEvents;

/// <summary>
/// Turns pod watch events into pipeline events keyed by pod UID, the way the kubelet reads them:
/// ADDED and MODIFIED are upserts, unless the pod carries a deletionTimestamp (graceful deletion has
/// begun: stop it); DELETED is a deletion.
/// </summary>
public sealed class PodWatchDecoder : IWatchEventDecoder<V1Pod>
{
    public static PodWatchDecoder Instance { get; } = new();

    /// <summary>Maps one decoded watch event to a pipeline event, or says why it cannot.</summary>
    public static PipelineEvent<V1Pod>? ToEvent(string type, V1Pod pod, out string? error)
    {
        ArgumentNullException.ThrowIfNull(pod);
        var uid = pod.Metadata?.Uid;
        if (string.IsNullOrEmpty(uid))
        {
            error = $"{type} pod {Describe(pod)} has no metadata.uid";
            return null;
        }

        if (string.IsNullOrEmpty(pod.Metadata!.Name))
        {
            error = $"{type} pod with uid {uid} has no metadata.name";
            return null;
        }

        error = null;
        return type switch
        {
            "ADDED" or "MODIFIED" when pod.Metadata.DeletionTimestamp is null => PipelineEvent<V1Pod>.Upsert(uid, pod),
            "ADDED" or "MODIFIED" or "DELETED" => PipelineEvent<V1Pod>.Delete(uid, pod),
            _ => Unknown(type, out error),
        };
    }

    public PipelineEvent<V1Pod>? Decode(string type, JsonElement obj, out string? error)
    {
        V1Pod? pod;
        try
        {
            // Straight from the parsed element: no copy of the object's text to parse a second time.
            pod = KubernetesJson.Deserialize<V1Pod>(obj);
        }
        catch (JsonException ex)
        {
            error = $"object is not a valid Pod: {ObjectFieldProblems.Describe(ex)}";
            return null;
        }
        catch (FormatException ex) when (ObjectFieldProblems.RefusedQuantity(ex) is { } value)
        {
            // The quantity converter throws past the JSON reader, so no path: the value says which.
            error = $"object is not a valid Pod: \"{value}\" is not {ObjectFieldProblems.Quantity}";
            return null;
        }
        catch (FormatException ex) when (ObjectFieldProblems.RefusedTime(ex) is { } value)
        {
            error = $"object is not a valid Pod: \"{value}\" is not a time (RFC 3339, such as 2026-01-02T15:04:05Z)";
            return null;
        }
        catch (Exception ex) when (ex is FormatException or OverflowException or InvalidOperationException or ArgumentException)
        {
            // A converter that throws past the JSON reader: no path; the value it refused, when its message quotes it.
            error = ObjectFieldProblems.QuotedValue(ex.Message) is { } value ? $"object is not a valid Pod: \"{value}\" is not a value the field it is in takes" : "object is not a valid Pod: a field holds a value of the wrong form";
            return null;
        }

        if (pod is null)
        {
            error = "object is not a Pod";
            return null;
        }

        if (pod.Kind is { } kind && kind != "Pod")
        {
            error = $"object is a {kind}, not a Pod";
            return null;
        }

        return ToEvent(type, pod, out error);
    }

    /// <summary>"namespace/name" for messages.</summary>
    public static string Describe(V1Pod pod) =>
        $"{pod.Metadata.Namespace()}/{pod.Metadata?.Name ?? "<unnamed>"}";

    private static PipelineEvent<V1Pod>? Unknown(string type, out string? error)
    {
        error = $"unknown watch event type \"{type}\"";
        return null;
    }
}
