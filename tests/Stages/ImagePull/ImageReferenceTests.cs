using Krustlet.Stages.ImagePull;

namespace Krustlet.Stages.Tests.ImagePull;

[TestClass]
public sealed class ImageReferenceTests
{
    [TestMethod]
    [DataRow("hello", "docker.io", "library/hello", "latest", null)]
    [DataRow("user/app:1.2", "docker.io", "user/app", "1.2", null)]
    [DataRow("index.docker.io/library/hello", "docker.io", "library/hello", "latest", null)]
    [DataRow("localhost/app", "localhost", "app", "latest", null)]
    [DataRow("127.0.0.1:5000/team/app:v1", "127.0.0.1:5000", "team/app", "v1", null)]
    [DataRow("ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "ghcr.io", "org/app", null, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    [DataRow("registry.local:443/app:tag@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "registry.local:443", "app", "tag", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    public void References_follow_the_Docker_grammar(string text, string registry, string repository, string? tag, string? digest)
    {
        var reference = ImageReference.Parse(text);

        Assert.AreEqual(registry, reference.Registry);
        Assert.AreEqual(repository, reference.Repository);
        Assert.AreEqual(tag, reference.Tag);
        Assert.AreEqual(digest, reference.Digest);
        Assert.AreEqual(digest ?? tag, reference.ManifestReference);
    }

    [TestMethod]
    public void Docker_Hub_is_reached_through_its_API_host_and_latest_is_recognised()
    {
        Assert.AreEqual("registry-1.docker.io", ImageReference.Parse("hello").ApiHost);
        Assert.IsTrue(ImageReference.Parse("hello").IsLatest);
        Assert.IsFalse(ImageReference.Parse("hello:1").IsLatest);
        Assert.AreEqual("docker.io/library/hello:latest", ImageReference.Parse("hello").ToString());
    }

    [TestMethod]
    [DataRow("", "the image reference is empty")]
    [DataRow("Hello", "a repository name must be lowercase")]
    [DataRow("app@sha256:abc", "malformed digest")]
    [DataRow("app:-bad", "malformed tag")]
    [DataRow("my_registry.io/app", "malformed registry \"my_registry.io\"")]
    public void Malformed_references_say_what_is_wrong(string text, string expected)
    {
        Assert.IsFalse(ImageReference.TryParse(text, out _, out var error));
        StringAssert.Contains(error, expected);
    }
}
