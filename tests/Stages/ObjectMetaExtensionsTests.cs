using k8s.Models;

namespace Krustlet.Stages.Tests;

[TestClass]
public sealed class ObjectMetaExtensionsTests
{
    [TestMethod]
    public void A_pod_that_names_no_namespace_is_in_default()
    {
        Assert.AreEqual("default", new V1Pod { Metadata = new V1ObjectMeta { Name = "web" } }.Namespace());
        Assert.AreEqual("default", new V1Pod().Namespace(), "no metadata at all");
        Assert.AreEqual("default", ((V1ObjectMeta?)null).Namespace());
    }

    [TestMethod]
    public void A_pod_that_names_its_namespace_is_in_it()
    {
        Assert.AreEqual("shop", new V1Pod { Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "shop" } }.Namespace());
    }
}
