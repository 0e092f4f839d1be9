package accounting

import (
	"reflect"
	"testing"
)

// TestAuditSummary: a summary audit is the whole audit less its module
// groups, every other figure and finding the same.
func TestAuditSummary(t *testing.T) {
	for name, m := range map[string]*Model{
		"plain": plainBenchModel(1000),
		"gptq":  gptqBenchModel(400),
	} {
		whole, err := Audit(m, Options{})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := Audit(m, Options{Summary: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(whole.Modules) == 0 || whole.Summary {
			t.Fatalf("%s: the whole audit has %d modules, Summary %v", name, len(whole.Modules), whole.Summary)
		}
		if !sum.Summary || len(sum.Modules) != 0 {
			t.Errorf("%s: summary audit: Summary %v, %d modules", name, sum.Summary, len(sum.Modules))
		}
		sum.Summary, sum.Modules = false, whole.Modules
		if !reflect.DeepEqual(sum, whole) {
			t.Errorf("%s: a summary audit differs from the whole one beyond its modules", name)
		}
	}
}
