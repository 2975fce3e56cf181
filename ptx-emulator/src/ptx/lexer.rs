//! The PTX tokenizer: a byte scanner that hands out one token at a time, each a slice of the
//! source (nothing is copied), with its 1-based line and column. Comments and whitespace are
//! skipped; newlines carry no meaning in PTX, so they produce no token.

/// What a token is. The parser decides what a word means (directive, mnemonic, register, name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A run of `[A-Za-z0-9_$%.]` starting with a letter, `_`, `$`, `%` or `.`; `::` inside a word
    /// belongs to it (`mma.sp::ordered_metadata.sync`), so a directive (`.reg`), a dotted
    /// mnemonic (`ld.global.nc.f32`) and a special register (`%tid.x`) are each one word.
    Word,
    /// Anything starting with a digit: `16`, `0x1F`, `0f3F800000`, `1.5e-3`. Validated by the parser.
    Number,
    /// `"..."`, quotes included.
    Str,
    /// One punctuation character: `, ; : { } [ ] ( ) < > + - ! @ | =`.
    Punct(u8),
    Eof,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Token<'a> {
    pub kind: Kind,
    pub text: &'a str,
    pub line: u32,
    pub column: u32,
}

impl Token<'_> {
    pub fn is_punct(&self, c: u8) -> bool {
        self.kind == Kind::Punct(c)
    }
}

/// A character the lexer cannot start a token with, or an unterminated string or comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: u32,
    /// Byte offset where the current line starts (for columns).
    line_start: usize,
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || matches!(c, b'_' | b'$' | b'%' | b'.')
}

fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.')
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            line: 1,
            line_start: 0,
        }
    }

    fn column_at(&self, pos: usize) -> u32 {
        (pos - self.line_start + 1) as u32
    }

    fn error(&self, pos: usize, message: String) -> LexError {
        LexError {
            line: self.line,
            column: self.column_at(pos),
            message,
        }
    }

    /// Skips whitespace and comments, counting lines.
    fn skip_trivia(&mut self) -> Result<(), LexError> {
        let bytes = self.src.as_bytes();
        while let Some(&c) = bytes.get(self.pos) {
            match c {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    self.line_start = self.pos;
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b'/' if bytes.get(self.pos + 1) == Some(&b'/') => {
                    self.pos = memchr_newline(bytes, self.pos);
                }
                b'/' if bytes.get(self.pos + 1) == Some(&b'*') => {
                    let (line, column) = (self.line, self.column_at(self.pos));
                    self.pos += 2;
                    loop {
                        match bytes.get(self.pos) {
                            None => {
                                return Err(LexError {
                                    line,
                                    column,
                                    message: "unterminated `/*` comment".into(),
                                });
                            }
                            Some(b'*') if bytes.get(self.pos + 1) == Some(&b'/') => {
                                self.pos += 2;
                                break;
                            }
                            Some(b'\n') => {
                                self.pos += 1;
                                self.line += 1;
                                self.line_start = self.pos;
                            }
                            Some(_) => self.pos += 1,
                        }
                    }
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// The next token; `Kind::Eof` (repeatedly) at the end of the text.
    pub fn next_token(&mut self) -> Result<Token<'a>, LexError> {
        self.skip_trivia()?;
        let bytes = self.src.as_bytes();
        let start = self.pos;
        let (line, column) = (self.line, self.column_at(start));
        let Some(&c) = bytes.get(start) else {
            return Ok(Token {
                kind: Kind::Eof,
                text: "",
                line,
                column,
            });
        };
        let kind = if is_word_start(c) {
            self.pos += 1;
            loop {
                match bytes.get(self.pos) {
                    Some(&c) if is_word_char(c) => self.pos += 1,
                    // `::` joins a qualifier to its word (`sp::ordered_metadata`); a lone `:`
                    // ends a label.
                    Some(b':') if bytes.get(self.pos + 1) == Some(&b':') => self.pos += 2,
                    _ => break,
                }
            }
            Kind::Word
        } else if c.is_ascii_digit() {
            // Prefixed literals (`0x`, `0f`, `0d`, `0b`) hold hex digits, where `e` is a digit; only
            // a decimal literal takes a signed exponent.
            let prefixed = c == b'0'
                && matches!(
                    bytes.get(start + 1),
                    Some(b'x' | b'X' | b'f' | b'F' | b'd' | b'D' | b'b' | b'B')
                );
            self.pos += 1;
            loop {
                match bytes.get(self.pos) {
                    Some(&c) if c.is_ascii_alphanumeric() || c == b'.' => self.pos += 1,
                    Some(b'+' | b'-') if !prefixed && matches!(bytes[self.pos - 1], b'e' | b'E') => self.pos += 1,
                    _ => break,
                }
            }
            Kind::Number
        } else if c == b'"' {
            self.pos += 1;
            loop {
                match bytes.get(self.pos) {
                    Some(b'"') => {
                        self.pos += 1;
                        break;
                    }
                    Some(b'\\') if bytes.get(self.pos + 1).is_some_and(|&c| c != b'\n') => self.pos += 2,
                    None | Some(b'\n') => {
                        return Err(LexError {
                            line,
                            column,
                            message: "unterminated string literal".into(),
                        });
                    }
                    Some(_) => self.pos += 1,
                }
            }
            Kind::Str
        } else if matches!(
            c,
            b',' | b';'
                | b':'
                | b'{'
                | b'}'
                | b'['
                | b']'
                | b'('
                | b')'
                | b'<'
                | b'>'
                | b'+'
                | b'-'
                | b'!'
                | b'@'
                | b'|'
                | b'='
        ) {
            self.pos += 1;
            Kind::Punct(c)
        } else {
            let ch = self.src[start..].chars().next().unwrap_or('?');
            return Err(self.error(start, format!("unexpected character `{ch}`")));
        };
        Ok(Token {
            kind,
            text: &self.src[start..self.pos],
            line,
            column,
        })
    }
}

/// The offset of the next `\n` at or after `from`, or the end of the text.
fn memchr_newline(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(bytes.len(), |i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(src: &str) -> Vec<(Kind, &str, u32, u32)> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token().unwrap();
            if t.kind == Kind::Eof {
                return out;
            }
            out.push((t.kind, t.text, t.line, t.column));
        }
    }

    #[test]
    fn words_numbers_and_punctuation() {
        let toks = tokens("@!%p1 mma.sp::ordered_metadata.sync {%f1, _}, [%rd1+-8], 0f3F800000;");
        let texts: Vec<&str> = toks.iter().map(|t| t.1).collect();
        assert_eq!(
            texts,
            [
                "@",
                "!",
                "%p1",
                "mma.sp::ordered_metadata.sync",
                "{",
                "%f1",
                ",",
                "_",
                "}",
                ",",
                "[",
                "%rd1",
                "+",
                "-",
                "8",
                "]",
                ",",
                "0f3F800000",
                ";"
            ]
        );
        assert_eq!(toks[3].0, Kind::Word);
        assert_eq!(toks[14].0, Kind::Number);
        assert_eq!(toks[0].0, Kind::Punct(b'@'));
    }

    #[test]
    fn labels_end_at_a_single_colon() {
        let toks = tokens("$L__BB0_14:\n\tret;");
        assert_eq!(toks[0], (Kind::Word, "$L__BB0_14", 1, 1));
        assert_eq!(toks[1], (Kind::Punct(b':'), ":", 1, 11));
        assert_eq!(toks[2], (Kind::Word, "ret", 2, 2));
    }

    #[test]
    fn numbers_keep_their_exponent_but_hex_literals_stop_at_signs() {
        let texts: Vec<&str> = tokens("1.5e-3 0f3E4CCCCD+1 9.0").iter().map(|t| t.1).collect();
        assert_eq!(texts, ["1.5e-3", "0f3E4CCCCD", "+", "1", "9.0"]);
    }

    #[test]
    fn comments_are_skipped_and_lines_counted() {
        let toks = tokens("// one\n/* two\nthree */ .reg // four\n\"s\\\"t\"");
        assert_eq!(toks, [(Kind::Word, ".reg", 3, 10), (Kind::Str, "\"s\\\"t\"", 4, 1)]);
    }

    #[test]
    fn errors_carry_their_position() {
        let mut lexer = Lexer::new("\n  #");
        let err = lexer.next_token().unwrap_err();
        assert_eq!((err.line, err.column), (2, 3));
        assert!(err.message.contains('#'));
        let mut lexer = Lexer::new("x\n /* never\n closed");
        lexer.next_token().unwrap();
        let err = lexer.next_token().unwrap_err();
        assert_eq!((err.line, err.column), (2, 2));
        let err = Lexer::new("\"open").next_token().unwrap_err();
        assert_eq!(err.message, "unterminated string literal");
    }
}
