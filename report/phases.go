package report

// phasesTable renders the decode phases; nil when the report has none.
// (Filled in with the decode pass.)
func phasesTable(rep *Report, opts TextOptions) *table { return nil }
