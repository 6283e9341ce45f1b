namespace Krustlet.Host.KubeletApi.Auth;

/// <summary>
/// Answers kept for a while on the injected clock, as the kubelet keeps TokenReview and
/// SubjectAccessReview answers. Bounded: when full, expired entries go first, then the ones closest to
/// expiring.
/// </summary>
internal sealed class ExpiringCache<TValue>(TimeProvider time, int capacity = ExpiringCache<TValue>.DefaultCapacity)
{
    /// <summary>The most answers kept.</summary>
    public const int DefaultCapacity = 4096;

    private readonly Lock _lock = new();
    private readonly Dictionary<string, (TValue Value, DateTimeOffset Expires)> _entries = new(StringComparer.Ordinal);

    public bool TryGet(string key, out TValue value)
    {
        lock (_lock)
        {
            if (_entries.TryGetValue(key, out var entry))
            {
                if (entry.Expires > time.GetUtcNow())
                {
                    value = entry.Value;
                    return true;
                }

                _entries.Remove(key);
            }
        }

        value = default!;
        return false;
    }

    public void Set(string key, TValue value, TimeSpan ttl)
    {
        if (ttl <= TimeSpan.Zero)
        {
            return;
        }

        lock (_lock)
        {
            var now = time.GetUtcNow();
            if (_entries.Count >= capacity && !_entries.ContainsKey(key))
            {
                foreach (var expired in _entries.Where(e => e.Value.Expires <= now).Select(e => e.Key).ToList())
                {
                    _entries.Remove(expired);
                }

                if (_entries.Count >= capacity)
                {
                    _entries.Remove(_entries.MinBy(e => e.Value.Expires).Key);
                }
            }

            _entries[key] = (value, now + ttl);
        }
    }
}
