package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// TestReusableWorkflow: the GitHub workflow README offers parses, is
// callable with the documented inputs, runs check, and every shell step is
// valid bash once the ${{ }} expressions are filled in.
func TestReusableWorkflow(t *testing.T) {
	data, err := os.ReadFile("../../.github/workflows/qinsaudit.yml")
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		On struct {
			WorkflowCall struct {
				Inputs map[string]struct {
					Required bool `yaml:"required"`
				} `yaml:"inputs"`
			} `yaml:"workflow_call"`
		} `yaml:"on"`
		Jobs map[string]struct {
			Permissions map[string]string `yaml:"permissions"`
			Steps       []struct {
				Run string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatal(err)
	}
	in := wf.On.WorkflowCall.Inputs
	for _, k := range []string{"model", "config", "baseline", "max-growth", "version"} {
		if _, ok := in[k]; !ok {
			t.Errorf("input %s missing", k)
		}
	}
	if !in["model"].Required {
		t.Error("model must be required")
	}
	job, ok := wf.Jobs["check"]
	if !ok || job.Permissions["pull-requests"] != "write" {
		t.Fatalf("job check with pull-requests: write: %+v", wf.Jobs)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	expr := regexp.MustCompile(`\$\{\{[^}]*\}\}`)
	var all string
	for _, s := range job.Steps {
		if s.Run == "" {
			continue
		}
		all += s.Run
		script := expr.ReplaceAllString(s.Run, "X")
		cmd := exec.Command(bash, "-n")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("bash -n: %v\n%s\n%s", err, out, s.Run)
		}
	}
	for _, want := range []string{"qinsaudit check", "--format markdown", "issues/comments/$id", "<!-- qinsaudit report -->"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in the steps", want)
		}
	}
}
