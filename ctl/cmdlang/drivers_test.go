package cmdlang

// The parser checks driver arguments against the descriptions of the
// drivers linked in: link them all, as the daemon and fwdctl do.
import _ "github.com/fwdd/fwdd/pmd/drivers"
