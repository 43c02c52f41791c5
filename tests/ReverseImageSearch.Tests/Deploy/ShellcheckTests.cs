namespace ReverseImageSearch.Tests.Deploy;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // bash, file modes
public class ShellcheckTests
{
    [Test]
    public async Task DeployScriptIsShellcheckClean()
    {
        var shellcheck = ProcessRunner.Find("shellcheck");
        Assert.That(shellcheck, Is.Not.Null,
            "shellcheck is not installed; install it (Debian/Ubuntu: apt-get install -y shellcheck) to check deploy.sh");

        var result = await ProcessRunner.RunAsync(shellcheck!, ["--shell=bash", "--severity=style", DeployScript.ScriptPath], null,
            TimeSpan.FromSeconds(120), TestPaths.RepoRoot);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.StandardOutput + result.StandardError);
    }

    [Test]
    public async Task DeployScriptParsesAndIsExecutable()
    {
        var result = await ProcessRunner.RunAsync("bash", ["-n", DeployScript.ScriptPath], null, TimeSpan.FromSeconds(30));
        Assert.That(result.ExitCode, Is.EqualTo(0), result.StandardError);
        Assert.That(File.GetUnixFileMode(DeployScript.ScriptPath) & UnixFileMode.UserExecute, Is.EqualTo(UnixFileMode.UserExecute));
        Assert.That(File.ReadLines(DeployScript.ScriptPath).First(), Is.EqualTo("#!/usr/bin/env bash"));
        Assert.That(File.ReadAllText(DeployScript.ScriptPath), Does.Contain("set -euo pipefail"));
    }
}
