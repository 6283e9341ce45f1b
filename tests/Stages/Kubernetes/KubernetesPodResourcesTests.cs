using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Krustlet.Stages.Kubernetes;

namespace Krustlet.Stages.Tests.Kubernetes;

[TestClass]
public sealed class KubernetesPodResourcesTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(Limits.Test, CooperativeCancellation = true)]
    public async Task ConfigMaps_secrets_and_tokens_come_from_the_API_and_missing_ones_are_null()
    {
        await using var api = await ApiEmulator.StartAsync(TestContext.CancellationToken);
        using var client = new k8s.Kubernetes(new KubernetesClientConfiguration { Host = api.Url });
        api.Put("configmaps", JsonNode.Parse(KubernetesJson.Serialize(new V1ConfigMap { ApiVersion = "v1", Kind = "ConfigMap", Metadata = new V1ObjectMeta { Name = "settings", NamespaceProperty = "shop" }, Data = new Dictionary<string, string> { ["mode"] = "fast" } }))!.AsObject());
        api.Put("secrets", JsonNode.Parse(KubernetesJson.Serialize(new V1Secret { ApiVersion = "v1", Kind = "Secret", Metadata = new V1ObjectMeta { Name = "creds", NamespaceProperty = "shop" }, Data = new Dictionary<string, byte[]> { ["password"] = "hunter2"u8.ToArray() } }))!.AsObject());
        var resources = new KubernetesPodResources(client);
        var pod = new V1Pod { Metadata = new V1ObjectMeta { Name = "web", NamespaceProperty = "shop", Uid = "u" }, Spec = new V1PodSpec { ServiceAccountName = "builder", Containers = [] } };

        Assert.AreEqual("fast", (await resources.GetConfigMapAsync("shop", "settings", TestContext.CancellationToken))!.Data["mode"]);
        Assert.AreEqual("hunter2", System.Text.Encoding.UTF8.GetString((await resources.GetAsync("shop", "creds", TestContext.CancellationToken))!.Data["password"]));
        Assert.IsNull(await resources.GetConfigMapAsync("shop", "absent", TestContext.CancellationToken));
        Assert.IsNull(await resources.GetAsync("other", "creds", TestContext.CancellationToken));
        Assert.AreEqual("token:shop:builder:vault", await resources.RequestTokenAsync(pod, "vault", 3600, TestContext.CancellationToken));
        Assert.IsTrue(api.Requests.Contains("POST /api/v1/namespaces/shop/serviceaccounts/builder/token"));
    }
}
