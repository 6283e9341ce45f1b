global using Krustlet.Tests.Shared;
