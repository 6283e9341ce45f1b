global using Krustlet.Pipeline.Tests.Support;
global using Krustlet.Tests.Shared;
