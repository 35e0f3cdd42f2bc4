package main

import (
	"strings"
	"sync"
	"testing"

	"github.com/charmbracelet/x/ansi"
)

// vtScreen is a small terminal emulator for the tests that run conclave
// chat in a pseudo-terminal: it applies the control sequences a
// bubbletea renderer writes to a grid of cells, so a test reads the screen
// a user would see rather than a stream of cursor moves and partial
// updates. It knows the cursor, erase, insert/delete, scroll-region and
// repeat sequences of xterm; styles, modes and OSC strings do not change
// the text and are ignored.
type vtScreen struct {
	mu         sync.Mutex
	rows, cols int
	cells      [][]rune // 0: the right half of a wide rune
	alt        [][]rune // the other buffer (main or alternate screen)
	row, col   int
	saved      [2]int
	top, bot   int // scroll region, inclusive
	last       rune
	p          *ansi.Parser
	changed    chan struct{} // gets a value after each write, if none waits
	answer     func([]byte)  // replies to terminal queries
}

func newVTScreen(rows, cols int, answer func([]byte)) *vtScreen {
	s := &vtScreen{rows: rows, cols: cols, bot: rows - 1, changed: make(chan struct{}, 1), answer: answer}
	s.cells = s.blank()
	s.alt = s.blank()
	s.p = ansi.NewParser()
	s.p.SetHandler(ansi.Handler{
		Print:     s.print,
		Execute:   s.execute,
		HandleCsi: s.csi,
		HandleEsc: s.esc,
	})
	return s
}

func (s *vtScreen) blank() [][]rune {
	g := make([][]rune, s.rows)
	for i := range g {
		g[i] = s.blankRow()
	}
	return g
}

func (s *vtScreen) blankRow() []rune {
	r := make([]rune, s.cols)
	for i := range r {
		r[i] = ' '
	}
	return r
}

// Write feeds terminal output to the screen.
func (s *vtScreen) Write(b []byte) (int, error) {
	s.mu.Lock()
	s.p.Parse(b)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return len(b), nil
}

// Text returns the screen, one line per row, trailing blanks trimmed.
func (s *vtScreen) Text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := make([]string, s.rows)
	for i, r := range s.cells {
		var b strings.Builder
		for _, c := range r {
			if c != 0 {
				b.WriteRune(c)
			}
		}
		lines[i] = strings.TrimRight(b.String(), " ")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}

func (s *vtScreen) clamp() {
	s.row = min(max(s.row, 0), s.rows-1)
	s.col = min(max(s.col, 0), s.cols-1)
}

func (s *vtScreen) print(r rune) {
	w := ansi.StringWidth(string(r))
	if w == 0 {
		return // combining marks and the like do not move the cursor
	}
	if s.col+w > s.cols {
		s.col = s.cols - w // the renderer turns autowrap off
	}
	s.cells[s.row][s.col] = r
	if w == 2 {
		s.cells[s.row][s.col+1] = 0
	}
	s.col = min(s.col+w, s.cols-1)
	s.last = r
}

func (s *vtScreen) execute(b byte) {
	switch b {
	case '\r':
		s.col = 0
	case '\n', '\v', '\f':
		s.lineFeed()
	case '\b':
		s.col = max(s.col-1, 0)
	case '\t':
		s.col = min((s.col/8+1)*8, s.cols-1)
	}
}

func (s *vtScreen) lineFeed() {
	if s.row == s.bot {
		s.scrollUp(1)
		return
	}
	s.row = min(s.row+1, s.rows-1)
}

// scrollUp moves the scroll region's rows up n, blanking the bottom ones.
func (s *vtScreen) scrollUp(n int) {
	for range min(n, s.bot-s.top+1) {
		copy(s.cells[s.top:s.bot], s.cells[s.top+1:s.bot+1])
		s.cells[s.bot] = s.blankRow()
	}
}

func (s *vtScreen) scrollDown(n int) {
	for range min(n, s.bot-s.top+1) {
		copy(s.cells[s.top+1:s.bot+1], s.cells[s.top:s.bot])
		s.cells[s.top] = s.blankRow()
	}
}

func (s *vtScreen) esc(cmd ansi.Cmd) {
	if cmd.Intermediate() != 0 {
		return // charset designations and the like
	}
	switch cmd.Final() {
	case 'M': // reverse index
		if s.row == s.top {
			s.scrollDown(1)
		} else {
			s.row = max(s.row-1, 0)
		}
	case 'D':
		s.lineFeed()
	case 'E':
		s.col = 0
		s.lineFeed()
	case '7':
		s.saved = [2]int{s.row, s.col}
	case '8':
		s.row, s.col = s.saved[0], s.saved[1]
	}
}

func (s *vtScreen) csi(cmd ansi.Cmd, params ansi.Params) {
	p := func(i, def int) int {
		v, _, _ := params.Param(i, def)
		if v == 0 && def == 1 {
			v = 1
		}
		return v
	}
	if cmd.Prefix() == '?' {
		if cmd.Final() == 'h' || cmd.Final() == 'l' {
			for i := range params {
				if v, _, _ := params.Param(i, 0); v == 1049 || v == 47 || v == 1047 {
					on := cmd.Final() == 'h'
					if on {
						s.saved = [2]int{s.row, s.col}
					}
					s.cells, s.alt = s.alt, s.cells
					if on {
						s.cells = s.blank()
					} else {
						s.row, s.col = s.saved[0], s.saved[1]
					}
				}
			}
		}
		return
	}
	if cmd.Prefix() != 0 || cmd.Intermediate() != 0 {
		return
	}
	row := s.cells[s.row]
	switch cmd.Final() {
	case 'A':
		s.row -= p(0, 1)
	case 'B', 'e':
		s.row += p(0, 1)
	case 'C', 'a':
		s.col += p(0, 1)
	case 'D':
		s.col -= p(0, 1)
	case 'E':
		s.row, s.col = s.row+p(0, 1), 0
	case 'F':
		s.row, s.col = s.row-p(0, 1), 0
	case 'G', '`':
		s.col = p(0, 1) - 1
	case 'd':
		s.row = p(0, 1) - 1
	case 'H', 'f':
		s.row, s.col = p(0, 1)-1, p(1, 1)-1
	case 'I':
		s.col = min((s.col/8+p(0, 1))*8, s.cols-1)
	case 'Z':
		s.col = max((s.col-1)/8*8-(p(0, 1)-1)*8, 0)
	case 'K':
		from, to := s.col, s.cols
		switch p(0, 0) {
		case 1:
			from, to = 0, s.col+1
		case 2:
			from = 0
		}
		for i := from; i < to; i++ {
			row[i] = ' '
		}
	case 'J':
		switch p(0, 0) {
		case 0:
			for i := s.col; i < s.cols; i++ {
				row[i] = ' '
			}
			for r := s.row + 1; r < s.rows; r++ {
				s.cells[r] = s.blankRow()
			}
		case 1:
			for r := 0; r < s.row; r++ {
				s.cells[r] = s.blankRow()
			}
			for i := 0; i <= s.col; i++ {
				row[i] = ' '
			}
		default:
			s.cells = s.blank()
		}
	case 'X':
		for i := s.col; i < min(s.col+p(0, 1), s.cols); i++ {
			row[i] = ' '
		}
	case 'b':
		for range p(0, 1) {
			s.print(s.last)
		}
	case '@':
		n := min(p(0, 1), s.cols-s.col)
		copy(row[s.col+n:], row[s.col:])
		for i := s.col; i < s.col+n; i++ {
			row[i] = ' '
		}
	case 'P':
		n := min(p(0, 1), s.cols-s.col)
		copy(row[s.col:], row[s.col+n:])
		for i := s.cols - n; i < s.cols; i++ {
			row[i] = ' '
		}
	case 'L', 'M':
		if s.row < s.top || s.row > s.bot {
			return
		}
		top := s.top
		s.top = s.row
		if cmd.Final() == 'L' {
			s.scrollDown(p(0, 1))
		} else {
			s.scrollUp(p(0, 1))
		}
		s.top = top
	case 'S':
		s.scrollUp(p(0, 1))
	case 'T':
		s.scrollDown(p(0, 1))
	case 'r':
		s.top, s.bot = p(0, 1)-1, p(1, s.rows)-1
		if s.top >= s.bot || s.bot >= s.rows {
			s.top, s.bot = 0, s.rows-1
		}
		s.row, s.col = 0, 0
	case 'c': // primary device attributes: answer as a VT220 would
		if s.answer != nil {
			s.answer([]byte("\x1b[?62;22c"))
		}
	case 'n':
		if p(0, 0) == 6 && s.answer != nil {
			s.answer([]byte(ansi.CursorPositionReport(s.row+1, s.col+1)))
		}
	}
	s.clamp()
}

// TestVTScreen checks the emulator on the sequences the renderer uses, so
// the chat tests read the right screen.
func TestVTScreen(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"text and newlines", "ab\r\ncd", "ab\ncd"},
		{"cursor position", "\x1b[2;3Hx\x1b[1;1Hy", "y\n  x"},
		{"forward and erase", "hello world\r\x1b[6C\x1b[K!", "hello !"},
		{"erase characters", "abcdef\r\x1b[2C\x1b[2Xz", "abz ef"},
		{"repeat", "a\x1b[3b", "aaaa"},
		{"insert and delete line", "1\r\n2\r\n3\x1b[2;1H\x1b[L", "1\n\n2\n3"},
		{"delete line", "1\r\n2\r\n3\x1b[1;1H\x1b[M", "2\n3"},
		{"scroll region", "\x1b[1;2r\x1b[2;1Ha\r\nb", "a\nb"},
		{"alternate screen", "main\x1b[?1049h\rALT", "ALT"},
		{"leave alternate screen", "main\x1b[?1049hALT\x1b[?1049l", "main"},
		{"styles ignored", "\x1b[1;31mred\x1b[m", "red"},
		{"wide runes", "⧗✓…x", "⧗✓…x"},
		{"erase screen", "abc\x1b[2Jd", "   d"},
		{"vertical absolute", "\x1b[3dz", "\n\nz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newVTScreen(4, 20, nil)
			s.Write([]byte(tc.in))
			if got := s.Text(); got != tc.want {
				t.Errorf("screen %q, want %q", got, tc.want)
			}
		})
	}
}
