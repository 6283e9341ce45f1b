using Krustlet.Pipeline.Configuration;
using Microsoft.Extensions.Configuration;

namespace Krustlet.Pipeline.Tests.Configuration;

[TestClass]
public sealed class PipelineOptionsReaderTests
{
    private static readonly Dictionary<string, StageOptions> Defaults = new()
    {
        ["Admission"] = new(1, 100),
        ["ImagePull"] = new(4, 50),
        ["StatusReport"] = new(2, 200),
    };

    private static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [TestMethod]
    public void Defaults_apply_when_nothing_is_configured()
    {
        var options = PipelineOptionsReader.Read(Config(), Defaults);

        Assert.AreEqual(new StageOptions(4, 50), options.For("ImagePull"));
        Assert.AreEqual(PipelineOptions.DefaultShutdownTimeout, options.ShutdownTimeout);
    }

    [TestMethod]
    public void Each_stage_reads_its_own_section()
    {
        var options = PipelineOptionsReader.Read(
            Config(("Pipeline:Stages:ImagePull:Parallelism", "8"), ("Pipeline:Stages:ImagePull:Capacity", "16"), ("Pipeline:Stages:Admission:Capacity", "3"), ("Pipeline:ShutdownTimeout", "00:00:05")),
            Defaults);

        Assert.AreEqual(new StageOptions(8, 16), options.For("ImagePull"));
        Assert.AreEqual(new StageOptions(1, 3), options.For("Admission"));
        Assert.AreEqual(new StageOptions(2, 200), options.For("StatusReport"));
        Assert.AreEqual(TimeSpan.FromSeconds(5), options.ShutdownTimeout);
    }

    [TestMethod]
    public void Keys_are_case_insensitive_like_the_rest_of_configuration()
    {
        var options = PipelineOptionsReader.Read(Config(("pipeline:stages:imagepull:parallelism", "6")), Defaults);

        Assert.AreEqual(6, options.For("ImagePull").Parallelism);
    }

    [TestMethod]
    [DataRow("0")]
    [DataRow("-3")]
    [DataRow("four")]
    [DataRow("2.5")]
    [DataRow("")]
    [DataRow("99999999999")]
    public void A_bad_value_stops_start_up_with_a_message_naming_the_setting(string value)
    {
        var ex = Assert.ThrowsExactly<PipelineConfigurationException>(() =>
            PipelineOptionsReader.Read(Config(("Pipeline:Stages:ImagePull:Parallelism", value)), Defaults));

        Assert.HasCount(1, ex.Problems);
        Assert.AreEqual($"Pipeline:Stages:ImagePull:Parallelism must be a whole number greater than zero (got '{value}').", ex.Problems[0]);
        StringAssert.Contains(ex.Message, "Pipeline:Stages:ImagePull:Parallelism");
    }

    [TestMethod]
    public void Every_problem_is_listed_at_once()
    {
        var ex = Assert.ThrowsExactly<PipelineConfigurationException>(() => PipelineOptionsReader.Read(
            Config(
                ("Pipeline:Stages:Admission:Capacity", "0"),
                ("Pipeline:Stages:StatusReport:Parallelism", "lots"),
                ("Pipeline:Stages:ImagPull:Parallelism", "2"),
                ("Pipeline:Stages:ImagePull:Paralelism", "2"),
                ("Pipeline:ShutdownTimeout", "soon")),
            Defaults));

        CollectionAssert.AreEquivalent(
            new[]
            {
                "Pipeline:Stages:Admission:Capacity must be a whole number greater than zero (got '0').",
                "Pipeline:Stages:StatusReport:Parallelism must be a whole number greater than zero (got 'lots').",
                "Pipeline:Stages:ImagPull is not a stage; the stages are Admission, ImagePull, StatusReport.",
                "Pipeline:Stages:ImagePull:Paralelism is not a stage setting; use Parallelism or Capacity.",
                "Pipeline:ShutdownTimeout must be a positive duration such as 00:00:30 (got 'soon').",
            },
            ex.Problems.ToArray());
        StringAssert.StartsWith(ex.Message, "Invalid configuration (5 problems):");
    }

    [TestMethod]
    public void Building_a_pipeline_without_options_for_a_stage_names_it()
    {
        var builder = new Krustlet.Pipeline.Engine.PipelineBuilder<int>()
            .AddStage(new DelegateStage<int>("Run"))
            .WithSink("Status", new RecordingSink<int>());

        var ex = Assert.ThrowsExactly<PipelineConfigurationException>(() => builder.Build(new PipelineOptions(new Dictionary<string, StageOptions> { ["Run"] = new(1, 1) })));

        Assert.AreEqual("Pipeline:Stages:Status has no options.", ex.Problems.Single());
    }
}
