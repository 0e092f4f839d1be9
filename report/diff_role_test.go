package report

import (
	"testing"

	"github.com/qinsaudit/qinsaudit/accounting"
)

// TestDiffByRoleEqualsAudit: by role, each side of a diff carries exactly
// the figures its own audit gives per role; role-matched moves an encoded
// module's weight between roles but keeps the totals.
func TestDiffByRoleEqualsAudit(t *testing.T) {
	old := New(mustAudit(t, &accounting.Model{Files: []accounting.File{{Path: "f32"}}, Tensors: []accounting.Tensor{
		{Name: "l.q.weight", DType: "float32", Shape: []int64{8, 8}, Storage: "0", StorageBytes: 256},
		{Name: "l.q.bias", DType: "float32", Shape: []int64{8}, Storage: "1", StorageBytes: 32},
		{Name: "embed.weight", DType: "float32", Shape: []int64{4, 8}, Storage: "2", StorageBytes: 128},
	}}))
	new := New(mustAudit(t, &accounting.Model{Files: []accounting.File{{Path: "qins"}}, Tensors: []accounting.Tensor{
		{Name: "l.q.stored", DType: "uint8", Shape: []int64{8, 8}, Storage: "0", StorageBytes: 64},
		{Name: "l.q.sign", DType: "int8", Shape: []int64{8, 8}, Storage: "1", StorageBytes: 64},
		{Name: "l.q.log_min", DType: "float32", Storage: "2", StorageBytes: 4},
		{Name: "l.q.log_max", DType: "float32", Storage: "3", StorageBytes: 4},
		{Name: "l.q.bias", DType: "float32", Shape: []int64{8}, Storage: "4", StorageBytes: 32},
		{Name: "embed.weight", DType: "float32", Shape: []int64{4, 8}, Storage: "5", StorageBytes: 128},
	}}))
	d := NewDiff(old, new, "role")
	rows := map[string]DiffRow{}
	for _, r := range d.Rows {
		rows[r.Key] = r
	}
	for side, rep := range []*Report{old, new} {
		for _, g := range rep.Roles {
			r, ok := rows[g.Role]
			if !ok {
				t.Fatalf("role %s missing from the diff", g.Role)
			}
			bytes, params, base := r.OldBytes, r.OldParams, r.OldBaseline
			if side == 1 {
				bytes, params, base = r.NewBytes, r.NewParams, r.NewBaseline
			}
			if bytes != g.StoredBytes || params != g.Params || base != g.BaselineBytes {
				t.Errorf("side %d role %s: diff %d B %d params %d baseline, audit %d B %d params %d baseline",
					side, g.Role, bytes, params, base, g.StoredBytes, g.Params, g.BaselineBytes)
			}
		}
	}
	if d.Total.OldBytes != old.Totals.StoredBytes || d.Total.NewBytes != new.Totals.StoredBytes {
		t.Errorf("totals %d -> %d, audits %d -> %d", d.Total.OldBytes, d.Total.NewBytes, old.Totals.StoredBytes, new.Totals.StoredBytes)
	}
	m := NewDiff(old, new, "role-matched")
	if m.Total != d.Total {
		t.Errorf("role-matched total %+v, role total %+v", m.Total, d.Total)
	}
	for _, r := range m.Rows {
		if r.Key == "encoded_linear" && (r.OldBytes != 256 || r.Status != "changed") {
			t.Errorf("role-matched encoded_linear: %+v", r)
		}
	}
}

func mustAudit(t *testing.T, m *accounting.Model) *accounting.Result {
	t.Helper()
	res, err := accounting.Audit(m, accounting.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
