namespace Krustlet.Stages.ImagePull.Registry;

/// <summary>The media types the image pull stage speaks.</summary>
public static class MediaTypes
{
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";

    public const string WasmLayer = "application/vnd.wasm.content.layer.v1+wasm";
    public const string Wasm = "application/wasm";
    public const string WasmComponentLayer = "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";
    public const string WasmConfig = "application/vnd.wasm.config.v0+json";

    public const string OciImageConfig = "application/vnd.oci.image.config.v1+json";
    public const string DockerImageConfig = "application/vnd.docker.container.image.v1+json";
    public const string OciLayerTar = "application/vnd.oci.image.layer.v1.tar";
    public const string OciLayerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string DockerLayerTarGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    public const string DockerLayerTar = "application/vnd.docker.image.rootfs.diff.tar";

    /// <summary>Sent on every manifest request: the registry picks among these (distribution answers 404 for an OCI manifest unless asked for it).</summary>
    public static readonly string[] ManifestAccept = [OciManifest, OciIndex, DockerManifest, DockerManifestList];

    public static bool IsIndex(string mediaType) => mediaType is OciIndex or DockerManifestList;

    public static bool IsWasmLayer(string mediaType) => mediaType is WasmLayer or Wasm or WasmComponentLayer;

    public static bool IsTarLayer(string mediaType) => mediaType is OciLayerTar or OciLayerTarGzip or DockerLayerTar or DockerLayerTarGzip;

    public static bool IsGzip(string mediaType) => mediaType is OciLayerTarGzip or DockerLayerTarGzip;
}
