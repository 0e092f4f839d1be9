package report

// comparisonsTable renders the comparisons; nil when the report has none.
// (Filled in with the heap cross-check.)
func comparisonsTable(rep *Report, opts TextOptions) *table { return nil }
