using BenchmarkDotNet.Running;

namespace Krustlet.Pipeline.Benchmarks;

public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
