namespace Krustlet.Stages.Run;

/// <summary>A pod's <c>spec.restartPolicy</c>.</summary>
public enum RestartPolicy
{
    /// <summary>Restart every container that ends, even one that succeeded (the default).</summary>
    Always,

    /// <summary>Restart a container only when it failed.</summary>
    OnFailure,

    /// <summary>Never restart a container.</summary>
    Never,
}

/// <summary>Reads <c>spec.restartPolicy</c> once, into a <see cref="RestartPolicy"/>.</summary>
public static class RestartPolicies
{
    /// <summary>
    /// The policy the pod asks for: unset is <see cref="RestartPolicy.Always"/>, as the API server
    /// defaults it. The API server accepts no other value; one that reaches the agent anyway (a static
    /// manifest) is taken as <see cref="RestartPolicy.OnFailure"/>: restarted on failure, never on success.
    /// </summary>
    public static RestartPolicy Parse(string? value) => value switch
    {
        null or "Always" => RestartPolicy.Always,
        "Never" => RestartPolicy.Never,
        _ => RestartPolicy.OnFailure,
    };
}
