// Package cmdlang is fwdd's operator language: one grammar for the startup
// file (fwdd -c), fwdctl -f batches, one-shot fwdctl commands and the
// interactive prompt (like grcli -f, vtysh, vppctl exec). See Help for the
// grammar.
//
// It owns the lexer, the parser, the typed command structs and the
// Executor interface the control goroutine implements. It knows nothing of
// the stack: it checks everything that can be checked from the text alone
// (numbers and their ranges, prefixes with host bits set, address family
// mixing, port range order, duplicate or conflicting keywords, missing
// words, driver arguments against the description each linked driver
// registers: pmd.Check, nothing driver-specific here), and leaves to the
// executor what needs state (does port p1 exist, is fib 3 below net.fibs).
//
// Invariants:
//   - Parse and ParseLines return all commands or none: a file with a bad
//     line yields an ErrorList (at most Options.MaxErrors) and no command.
//   - Every error is an *Error naming the line and the word and saying what
//     was expected; errors.Is(err, ErrSyntax) holds. No input panics (fuzzed).
//   - A parsed command's String() parses back to an equal command.
//   - Commands are immutable values once returned; the package has no
//     mutable package-level state.
//
// Lexing: words are separated by blanks; a word starting with '#' starts a
// comment; "double quotes" make one word with blanks in it (\" and \\
// escape); lines are at most MaxLineLen bytes of printable UTF-8.
//
// Anchors: FreeBSD route(8)/ipfw(8)/arp(8) for words and output, grout's
// grcli for one grammar across file and live CLI.
package cmdlang
