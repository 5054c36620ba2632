package cmdlang

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// word is one lexical word of a command line.
type word struct {
	text string
	col  int // 1-based byte column of the word's first character
}

// MaxLineLen bounds one command line; longer lines are rejected.
const MaxLineLen = 4096

// lex splits one line into words. Words are separated by spaces or tabs; a
// word starting with '#' starts a comment that runs to the end of the line; a
// word starting with '"' runs to the next unescaped '"' (\" and \\ are the
// only escapes) and must be followed by a blank or the end of the line. A
// trailing '\r' is dropped (CRLF files). Control characters and invalid UTF-8
// are rejected.
func lex(line string) ([]word, *Error) {
	line = strings.TrimSuffix(line, "\r")
	if len(line) > MaxLineLen {
		return nil, &Error{Msg: fmt.Sprintf("line is %d bytes long (at most %d)", len(line), MaxLineLen)}
	}
	var words []word
	i := 0
	for i < len(line) {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			i++
			continue
		case c == '#':
			return words, nil
		}
		start := i
		if c == '"' {
			var b strings.Builder
			i++
			closed := false
			for i < len(line) {
				c := line[i]
				if c == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					b.WriteByte(line[i+1])
					i += 2
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				if err := checkChar(line, i, start); err != nil {
					return nil, err
				}
				r, n := utf8.DecodeRuneInString(line[i:])
				b.WriteRune(r)
				i += n
			}
			if !closed {
				return nil, &Error{Col: start + 1, Word: Truncate(line[start:]), Msg: "unterminated quoted word (a closing \" is missing)"}
			}
			if i < len(line) && line[i] != ' ' && line[i] != '\t' {
				return nil, &Error{Col: start + 1, Word: Truncate(line[start:]), Msg: "a quoted word must be followed by a blank"}
			}
			words = append(words, word{text: b.String(), col: start + 1})
			continue
		}
		for i < len(line) && line[i] != ' ' && line[i] != '\t' {
			if line[i] == '"' {
				return nil, &Error{Col: i + 1, Word: Truncate(line[start:]), Msg: "a quote may only start a word"}
			}
			if err := checkChar(line, i, start); err != nil {
				return nil, err
			}
			_, n := utf8.DecodeRuneInString(line[i:])
			i += n
		}
		words = append(words, word{text: line[start:i], col: start + 1})
	}
	return words, nil
}

// checkChar rejects control characters and invalid UTF-8 at line[i].
func checkChar(line string, i, start int) *Error {
	c := line[i]
	if c < 0x20 || c == 0x7f {
		return &Error{Col: i + 1, Msg: fmt.Sprintf("control character %q at column %d is not allowed", c, i+1)}
	}
	if c >= utf8.RuneSelf {
		if r, n := utf8.DecodeRuneInString(line[i:]); r == utf8.RuneError && n <= 1 {
			return &Error{Col: i + 1, Msg: fmt.Sprintf("invalid UTF-8 at column %d", i+1)}
		}
	}
	return nil
}

// Quote returns s as one word of the language: unchanged when it lexes as a
// single plain word, otherwise in double quotes with " and \ escaped.
func Quote(s string) string {
	plain := s != "" && s[0] != '#' && s[0] != '"'
	for i := 0; plain && i < len(s); i++ {
		if c := s[i]; c == ' ' || c == '\t' || c == '"' || c < 0x20 || c == 0x7f {
			plain = false
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
