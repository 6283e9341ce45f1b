global using Krustlet.Pipeline.Tests.Support;
