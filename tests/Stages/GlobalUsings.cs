global using Krustlet.Tests.Shared;
global using Krustlet.Stages.Tests.Support;
