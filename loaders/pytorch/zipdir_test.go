package pytorch

import (
	"archive/zip"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// zipRecords lists the records readZipDir finds, each as name, sizes,
// method and data offset, or the error.
func zipRecords(data []byte) ([]string, error) {
	r := bytes.NewReader(data)
	d, err := readZipDir(r, int64(len(data)))
	if err != nil {
		return nil, err
	}
	h := newHeaderReader(r, int64(len(data)))
	var out []string
	err = d.each(func(name []byte, e zipEntry) bool {
		off, err := e.dataOffset(h)
		if err != nil {
			off = -1
		}
		out = append(out, fmt.Sprintf("%s %d %d %d %d", name, e.csize, e.usize, e.method, off))
		return true
	})
	return out, err
}

// archiveZipRecords is zipRecords by archive/zip.
func archiveZipRecords(data []byte) ([]string, error) {
	z, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && z == nil {
		return nil, err
	}
	var out []string
	for _, f := range z.File {
		off, err := f.DataOffset()
		if err != nil {
			off = -1
		}
		out = append(out, fmt.Sprintf("%s %d %d %d %d", f.Name, f.CompressedSize64, f.UncompressedSize64, f.Method, off))
	}
	return out, nil
}

// TestZipDirZip64 reads an archive of more than 65,535 records, whose end
// record points to a zip64 one, as archive/zip does.
func TestZipDirZip64(t *testing.T) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for i := range 70000 {
		f, err := w.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("a/data/%d", i), Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte{byte(i)})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if !bytes.Contains(data[len(data)-200:], []byte("PK\x06\x06")) {
		t.Fatal("the writer wrote no zip64 end record")
	}
	got, err := zipRecords(data)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := archiveZipRecords(data)
	if len(got) != 70000 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%d records, want %d as archive/zip reads them", len(got), len(want))
	}
}

// TestZipDirLargeHeaders reads headers that straddle the pieces the
// directory is read in, and are larger than one, as archive/zip does.
func TestZipDirLargeHeaders(t *testing.T) {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for i := range 6 {
		h := &zip.FileHeader{Name: fmt.Sprintf("a/%d/%s", i, strings.Repeat("n", 12000*i)), Method: zip.Store,
			Comment: strings.Repeat("c", 30000+i), Extra: []byte{0xfe, 0xca, 4, 0, 1, 2, 3, 4}}
		f, err := w.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte{byte(i)})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := zipRecords(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := archiveZipRecords(buf.Bytes())
	if len(got) != 6 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%d records, want %d as archive/zip reads them", len(got), len(want))
	}
}

// TestZipDirMalformed checks what readZipDir refuses.
func TestZipDirMalformed(t *testing.T) {
	good := goodZip(t)
	end := bytes.LastIndex(good, []byte("PK\x05\x06"))
	dir := bytes.Index(good, []byte("PK\x01\x02"))
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"no end record", good[:end], "not a valid zip file"},
		{"empty", nil, "not a valid zip file"},
		{"directory past its end record", patchEnd(t, good, 16, uint16(dir+1)), "is not before its end record"},
		{"more records than fit", patchEnd(t, patchEnd(t, good, 10, 1000), 8, 1000), "records in a"},
		{"count wrong", patchEnd(t, patchEnd(t, good, 10, 2), 8, 2), "holds 3 records, its end record says 2"},
		{"bad header signature", cat(good[:dir], []byte("PK\x01\x03"), good[dir+4:]), "no central directory header"},
		{"name past the directory", patchCentral(t, good, "archive/data.pkl", 28, 0xffff), "runs past the directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readZipDir(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	// A local header without its signature.
	data := bytes.Clone(good)
	second := 1 + bytes.Index(data[1:], []byte("PK\x03\x04"))
	copy(data[second:], "PK\x03\x05")
	if _, err := loadBytes(data); err == nil || !strings.Contains(err.Error(), "local header: zip: not a valid zip file") {
		t.Errorf("bad local header: %v", err)
	}
}

// FuzzZipDir checks readZipDir against archive/zip: where both read an
// archive, they find the same records at the same offsets.
func FuzzZipDir(f *testing.F) {
	f.Add(goodZip(f))
	f.Add(buildZip(f))
	f.Add(buildZip(f, record{"archive/data.pkl", []byte("x")}, record{"archive/data/0", make([]byte, 70)}))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := zipRecords(data)
		if err != nil {
			return
		}
		want, err := archiveZipRecords(data)
		if err != nil {
			return
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("records\n%s\nwant (archive/zip)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
