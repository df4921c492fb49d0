package moetune.datasets;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedInputStream;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Reads the JSON values of a dataset file with the line each starts on: a JSON array of records (a
 * file whose first non-blank char is {@code [}) or JSON Lines (one record per non-blank line). The
 * file must be UTF-8; a leading byte-order mark is skipped (editors on Windows write one); invalid
 * UTF-8 is an error naming the line. Strings up to 512 Mi chars are accepted (a 10 MB message is
 * legitimate data; truncation to the max length happens later, counted).
 *
 * <p>The file is streamed: one record is in memory at a time (Jackson's streaming parser over a
 * strict UTF-8 decoder), so a file of any size can be read in memory bounded by what the caller
 * keeps. A string with a lone UTF-16 surrogate (a JSON escape such as {@code "\\ud800"} without its
 * pair, which no tokenizer can encode) makes its record bad, naming the field.
 */
final class JsonLines {
  /**
   * One JSON value of the file; {@code parseError} is set instead of {@code node} when a JSONL line
   * is bad.
   */
  record Entry(JsonNode node, int line, String parseError) {}

  static final ObjectMapper MAPPER = new ObjectMapper();

  static {
    MAPPER
        .getFactory()
        .setStreamReadConstraints(
            StreamReadConstraints.builder().maxStringLength(512 << 20).build());
  }

  private JsonLines() {}

  /** Every entry of the file, in order (the whole list in memory; for small files and tests). */
  static List<Entry> read(Path file) {
    List<Entry> out = new ArrayList<>();
    forEach(file, out::add);
    return out;
  }

  /** Streams the entries of the file to {@code sink}, one at a time, in file order. */
  static void forEach(Path file, Consumer<Entry> sink) {
    try (InputStream raw = open(file);
        LineCountingReader in = new LineCountingReader(file, raw)) {
      int first = in.skipWhitespace();
      if (first < 0) {
        throw new DatasetException(
            file
                + ": the file is empty; expected a JSON array of records or"
                + " one JSON record per line");
      }
      if (first == '[') {
        readArray(file, in, sink);
      } else {
        readLines(in, sink);
      }
    } catch (IOException e) {
      throw new DatasetException(file + ": cannot read: " + e.getMessage());
    }
  }

  private static InputStream open(Path file) {
    try {
      InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
      in.mark(3);
      byte[] bom = in.readNBytes(3);
      if (!(bom.length == 3
          && (bom[0] & 0xFF) == 0xEF
          && (bom[1] & 0xFF) == 0xBB
          && (bom[2] & 0xFF) == 0xBF)) {
        in.reset();
      }
      return in;
    } catch (NoSuchFileException e) {
      throw new DatasetException(file + ": no such file; check the path");
    } catch (IOException e) {
      throw new DatasetException(file + ": cannot read: " + e.getMessage());
    }
  }

  /**
   * A strict UTF-8 reader that counts the lines it has handed out, so invalid UTF-8 is reported
   * with its line: every good char before the bad bytes is handed out first, and the next read
   * throws. (InputStreamReader drops the good chars of a chunk with an error, so the count would
   * stop short.)
   */
  private static final class LineCountingReader extends Reader {
    private final Path file;
    private final InputStream in;
    private final CharsetDecoder dec =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    private final ByteBuffer bytes = ByteBuffer.allocate(1 << 16).flip();
    private boolean eof;
    private boolean bad;
    private int pushedBack = -1;
    private int line = 1;

    LineCountingReader(Path file, InputStream in) {
      this.file = file;
      this.in = in;
    }

    int line() {
      return line;
    }

    /** Skips whitespace and returns the next char without consuming it, or -1 at the end. */
    int skipWhitespace() throws IOException {
      while (true) {
        int c = read();
        if (c < 0 || !Character.isWhitespace(c)) {
          if (c >= 0) {
            pushedBack = c; // not whitespace, so not a newline: the line count stays right
          }
          return c;
        }
      }
    }

    @Override
    public int read(char[] buf, int off, int len) throws IOException {
      if (len == 0) {
        return 0;
      }
      if (pushedBack >= 0) {
        buf[off] = (char) pushedBack;
        pushedBack = -1;
        return 1;
      }
      CharBuffer out = CharBuffer.wrap(buf, off, len);
      while (out.position() == off) {
        if (bad) {
          throw new DatasetException(
              file
                  + ":"
                  + line
                  + ": invalid UTF-8; the dataset must be UTF-8 (re-save or convert it, e.g."
                  + " with iconv)");
        }
        CoderResult r = dec.decode(bytes, out, eof);
        if (r.isError()) {
          bad = true; // hand out what was decoded before the bad bytes first
        } else if (r.isUnderflow()) {
          if (eof) {
            if (dec.flush(out).isError()) {
              bad = true;
            } else if (out.position() == off) {
              return -1;
            }
          } else {
            bytes.compact();
            int n = in.read(bytes.array(), bytes.position(), bytes.remaining());
            if (n < 0) {
              eof = true;
            } else {
              bytes.position(bytes.position() + n);
            }
            bytes.flip();
          }
        }
      }
      int n = out.position() - off;
      for (int i = off; i < off + n; i++) {
        if (buf[i] == '\n') {
          line++;
        }
      }
      return n;
    }

    @Override
    public void close() throws IOException {
      in.close();
    }
  }

  private static void readArray(Path file, LineCountingReader in, Consumer<Entry> sink)
      throws IOException {
    int lineOffset = in.line() - 1; // blank lines before the '[' the parser does not see
    try (JsonParser p = MAPPER.getFactory().createParser(in)) {
      p.nextToken();
      while (true) {
        JsonToken t = p.nextToken();
        if (t == JsonToken.END_ARRAY) {
          break;
        }
        if (t == null) {
          throw new DatasetException(
              file + ": the JSON array is not closed; the file may be cut off");
        }
        int line = lineOffset + p.currentTokenLocation().getLineNr();
        JsonNode node = MAPPER.readTree(p);
        String bad = loneSurrogate(node, "");
        sink.accept(bad == null ? new Entry(node, line, null) : new Entry(null, line, bad));
      }
      if (p.nextToken() != null) {
        throw new DatasetException(
            file
                + ":"
                + (lineOffset + p.currentTokenLocation().getLineNr())
                + ": text after the closing ']' of the record array");
      }
    } catch (com.fasterxml.jackson.core.io.JsonEOFException e) {
      throw new DatasetException(
          file
              + ":"
              + (lineOffset + e.getLocation().getLineNr())
              + ": the JSON array is not closed; the file may be cut off");
    } catch (JsonProcessingException e) {
      // A broken array cannot be resynchronised, so even with skipping this fails the load.
      throw new DatasetException(
          file
              + ":"
              + (lineOffset + e.getLocation().getLineNr())
              + ": bad JSON: "
              + firstLine(e)
              + "; fix the file");
    }
  }

  private static void readLines(LineCountingReader in, Consumer<Entry> sink) throws IOException {
    BufferedReader lines = new BufferedReader(in, 1 << 16);
    int line = in.line() - 1;
    String s;
    while ((s = lines.readLine()) != null) {
      line++;
      if (s.isBlank()) {
        continue;
      }
      try {
        JsonNode node = MAPPER.readTree(s);
        String bad = loneSurrogate(node, "");
        sink.accept(bad == null ? new Entry(node, line, null) : new Entry(null, line, bad));
      } catch (JsonProcessingException e) {
        sink.accept(
            new Entry(
                null,
                line,
                "bad JSON: "
                    + firstLine(e)
                    + " (expected one JSON record per line, or a JSON array)"));
      }
    }
  }

  /**
   * The first string in the tree with a lone UTF-16 surrogate, as a message naming its field, or
   * null.
   */
  static String loneSurrogate(JsonNode node, String path) {
    if (node.isTextual()) {
      int at = loneSurrogateIndex(node.textValue());
      return at < 0
          ? null
          : "field '"
              + (path.isEmpty() ? "(the record)" : path)
              + "': a lone UTF-16 surrogate \\u"
              + Integer.toHexString(node.textValue().charAt(at))
              + " at char "
              + at
              + " (a \\u escape without its pair); fix or remove it";
    }
    if (node.isObject()) {
      for (var e : node.properties()) {
        String bad =
            loneSurrogate(e.getValue(), path.isEmpty() ? e.getKey() : path + "." + e.getKey());
        if (bad != null) {
          return bad;
        }
      }
    } else if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) {
        String bad = loneSurrogate(node.get(i), path + "[" + i + "]");
        if (bad != null) {
          return bad;
        }
      }
    }
    return null;
  }

  /** The index of the first unpaired surrogate char in s, or -1. */
  static int loneSurrogateIndex(String s) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (Character.isHighSurrogate(c)) {
        if (i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
          i++;
          continue;
        }
        return i;
      }
      if (Character.isLowSurrogate(c)) {
        return i;
      }
    }
    return -1;
  }

  private static String firstLine(JsonProcessingException e) {
    String m = e.getOriginalMessage() == null ? "unreadable JSON" : e.getOriginalMessage();
    return m.lines().findFirst().orElse(m);
  }
}
