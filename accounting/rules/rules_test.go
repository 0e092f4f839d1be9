package rules

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// TestBuiltinQINSExpressible: the built-in QINS schemes, written as a
// rules file, load to exactly the built-in rows, and a model classified
// by the file's rules alone is accounted identically.
func TestBuiltinQINSExpressible(t *testing.T) {
	got, err := Load("../../fixtures/rules/qins.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range got {
		want, ok := accounting.BuiltinScheme(s.Name)
		if !ok || !reflect.DeepEqual(s, want) {
			t.Errorf("rule %s:\n%+v\nbuilt-in:\n%+v", s.Name, s, want)
		}
	}
	// Renamed, the user's rules take precedence over the built-ins; every
	// number is the same.
	m := &accounting.Model{Files: []accounting.File{{Path: "m"}}}
	add := func(name, dtype string, shape ...int64) {
		d, _ := accounting.LookupDType(dtype)
		n, _ := accounting.Numel(shape)
		b, _ := d.Bytes(n)
		m.Tensors = append(m.Tensors, accounting.Tensor{Name: name, DType: dtype, Shape: shape, Storage: name, StorageBytes: b})
	}
	for i := 0; i < 3; i++ {
		p := fmt.Sprintf("blocks.%d.q.", i)
		add(p+"stored", "uint8", 64, 64)
		add(p+"sign", "int8", 64, 64)
		add(p+"log_min", "float32")
		add(p+"log_max", "float32")
		add(fmt.Sprintf("blocks.%d.v.weight_qins", i), "float32", 64, 64)
	}
	builtin, _ := accounting.Audit(m, accounting.Options{})
	for i := range got {
		got[i].Name = "user-" + got[i].Name
	}
	user, _ := accounting.Audit(m, accounting.Options{Schemes: got})
	for i := range builtin.Rows {
		b, u := builtin.Rows[i], user.Rows[i]
		if u.Scheme != "user-"+b.Scheme || u.Role != b.Role || u.Params != b.Params || u.BaselineBytes != b.BaselineBytes || u.StoredBytes != b.StoredBytes {
			t.Errorf("%s: user %+v, built-in %+v", b.Name, u.Class, b.Class)
		}
	}
	if !reflect.DeepEqual(builtin.Total, user.Total) || len(builtin.Findings) != len(user.Findings) {
		t.Errorf("totals or findings differ")
	}
}

func TestUserCodec(t *testing.T) {
	rules, err := Load("../../fixtures/rules/acme.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := &accounting.Model{Files: []accounting.File{{Path: "m"}}}
	m.Tensors = []accounting.Tensor{
		{Name: "l.codes", DType: "int32", Shape: []int64{64, 10}, Storage: "a", StorageBytes: 2560},
		{Name: "l.row_scale", DType: "float16", Shape: []int64{64}, Storage: "b", StorageBytes: 128},
		{Name: "l.signs", DType: "uint8", Shape: []int64{640}, Storage: "c", StorageBytes: 640},
	}
	r, err := accounting.Audit(m, accounting.Options{Schemes: rules})
	if err != nil {
		t.Fatal(err)
	}
	g := r.Roles[0]
	// 640 int32 codes x 10 weights each (32/3, whole).
	if g.Key != "encoded_linear" || g.Params != 6400 || g.StoredBytes != 3328 || g.Tensors != 3 {
		t.Errorf("acme: %+v", g)
	}
	if len(r.Findings) != 1 || r.Findings[0].Kind != accounting.SidecarOverhead || r.Findings[0].Bytes != 640-80 {
		t.Errorf("findings %+v", r.Findings)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ body, want string }{
		{"schemes:\n  - name: x\n    main: {leaf: w, dtypes: [float33]}\n", `:2: scheme "x": main (w): unknown dtype "float33"`},
		{"schemes:\n  - name: x\n    mane: {leaf: w}\n", `line 3: unknown key "mane"`},
		{"schemes:\n  - name: x\n    main: {part: weight}\n", "main: no leaf"},
		{"schemes:\n  - name: x\n    main: {leaf: w}\n    sides: [{leaf: s}]\n", "sides[0] (s): no part"},
		{"schemes:\n  - name: x\n    main: {leaf: w}\n    packed: diagonal\n", `packed: "diagonal"`},
		{"schemes:\n  - name: x\n    main: {leaf: w}\n  - name: x\n    main: {leaf: v}\n", "defined twice"},
		{"schemes: [", "did not find expected"},
		{"schemes: 3\n", `line 1: "3" is a number, want a list`},
		{"", "empty file: no schemes"},
		{" \n\t\n", "empty file: no schemes"},
	} {
		p := filepath.Join(dir, "r.yaml")
		os.WriteFile(p, []byte(c.body), 0o644)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: %v, want %q", c.body, err, c.want)
		}
	}
}
