using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;

namespace Krustlet.Host.Tests.PipelinePage;

/// <summary>
/// The pipeline page in a real browser: Debian's chromium driven through chromium-driver (both
/// installed by scripts/test.sh), against a real agent whose pods flow while the page is open.
/// </summary>
[TestClass]
public sealed class PipelinePageBrowserTests
{
    private static readonly string[] Stages = ["Admission", "ImagePull", "Compile", "VolumeSetup", "Run", "StatusReport"];

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public async Task The_page_draws_the_stages_updates_while_pods_flow_and_opens_a_pods_timeline_and_log()
    {
        var ct = TestContext.CancellationToken;
        await using var agent = await PipelinePageHarness.StartAsync(onKubeletPort: false, "unused-token", ct);
        StringAssert.StartsWith(agent.Announcement, "pipeline page: http://127.0.0.1:");

        await agent.AddPodsAsync("hello", "hello", 12, "Never", ct);
        using var browser = Browser();
        browser.Navigate().GoToUrl(agent.Url);
        var wait = new WebDriverWait(browser, TimeSpan.FromSeconds(60));

        // The six stages, drawn in the graph's order, each with its figures.
        wait.Until(d => d.FindElements(By.CssSelector("#graph g.stage")).Count == Stages.Length);
        CollectionAssert.AreEqual(Stages, browser.FindElements(By.CssSelector("#graph g.stage")).Select(g => g.GetAttribute("data-stage")).ToArray());
        StringAssert.Contains(browser.FindElement(By.CssSelector("g.stage[data-stage='Run']")).Text, "in flight");
        wait.Until(d => Processed(d, "Admission") >= 12);

        // More pods while the page is open: the figures move without a reload.
        var before = Processed(browser, "Admission");
        await agent.AddPodsAsync("counter", "counter", 5, "Always", ct);
        wait.Until(d => Processed(d, "Admission") >= before + 5);
        wait.Until(d => d.FindElement(By.CssSelector("#phases button[data-phase='Succeeded']")).Text == "Succeeded 12");
        wait.Until(d => d.FindElement(By.CssSelector("#phases button[data-phase='Running']")).Text == "Running 5");

        // The table shows one phase a page at a time; a click opens the pod's timeline and log tail.
        browser.FindElement(By.CssSelector("#phases button[data-phase='Succeeded']")).Click();
        wait.Until(d => d.FindElements(By.CssSelector("#pods tbody tr")).Count == 12);
        browser.FindElement(By.CssSelector("#pods tbody tr[data-uid='uid-hello-3']")).Click();
        wait.Until(d => d.FindElement(By.Id("detail-title")).Text.StartsWith("default/hello-3", StringComparison.Ordinal));
        wait.Until(d => d.FindElements(By.CssSelector("#timeline tbody tr")).Any(r => r.Text.Contains("Succeeded", StringComparison.Ordinal)));
        StringAssert.Contains(browser.FindElement(By.CssSelector("pre[data-container='main']")).Text, "Hello from Krustlet for .NET");

        // And back to the running pods, whose log keeps growing.
        browser.FindElement(By.CssSelector("#phases button[data-phase='Running']")).Click();
        wait.Until(d => d.FindElements(By.CssSelector("#pods tbody tr")).Count == 5);
        browser.FindElement(By.CssSelector("#pods tbody tr[data-uid='uid-counter-0']")).Click();
        wait.Until(d => d.FindElement(By.Id("detail-title")).Text.StartsWith("default/counter-0", StringComparison.Ordinal));

        var screenshot = Path.Combine(TestContext.TestRunResultsDirectory ?? Path.GetTempPath(), "pipeline-page.png");
        ((ITakesScreenshot)browser).GetScreenshot().SaveAsFile(screenshot);
        TestContext.AddResultFile(screenshot);
    }

    private static long Processed(IWebDriver browser, string stage) =>
        long.TryParse(browser.FindElement(By.CssSelector($"g.stage[data-stage='{stage}']")).GetAttribute("data-processed"), out var n) ? n : -1;

    private static ChromeDriver Browser()
    {
        var service = ChromeDriverService.CreateDefaultService("/usr/bin", "chromedriver");
        service.SuppressInitialDiagnosticInformation = true;
        var options = new ChromeOptions { BinaryLocation = "/usr/bin/chromium" };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1100");
        return new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
    }
}
