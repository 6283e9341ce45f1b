namespace Krustlet.Host.Certificates;

/// <summary>A CertificateSigningRequest that gave no usable certificate: denied, failed, deleted, not issued in time, or issued unusable.</summary>
public sealed class CertificateRequestException : Exception
{
    public CertificateRequestException(string message)
        : base(message)
    {
    }

    public CertificateRequestException()
    {
    }

    public CertificateRequestException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
