package main

import (
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/qinsaudit/qinsaudit/accounting/heapcheck"
)

func main() {
	t0 := time.Now()
	p, err := heapcheck.Read(os.Args[1])
	if err != nil {
		fmt.Println("ERR", err)
		return
	}
	var base *heapcheck.Profile
	if len(os.Args) > 2 && os.Args[2] != "-" {
		base, err = heapcheck.Read(os.Args[2])
		if err != nil {
			fmt.Println("ERR", err)
			return
		}
	}
	var focus *regexp.Regexp
	if len(os.Args) > 3 {
		focus = regexp.MustCompile(os.Args[3])
	}
	m, err := heapcheck.Measure(p, base, focus)
	fmt.Printf("%s rate=%d header=%d listed=%d samples=%d\n", p.Format, p.SampleRate, p.HeaderInUseBytes, p.ListedInUseBytes, len(p.P.Sample))
	fmt.Printf("inuse=%d sigma=%d unlisted=%d err=%v (%v)\n", m.InUseBytes, m.SigmaBytes, m.UnlistedBytes, err, time.Since(t0))
	for _, n := range m.Notices {
		fmt.Println(" notice:", n.Kind, n.Message)
	}
}
