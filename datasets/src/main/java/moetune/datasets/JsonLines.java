package moetune.datasets;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads the JSON values of a dataset file with the line each starts on: a JSON array of records (a
 * file whose first non-blank char is {@code [}) or JSON Lines (one record per non-blank line). The
 * file must be UTF-8; a leading byte-order mark is skipped (editors on Windows write one); invalid
 * UTF-8 is an error naming the line. Strings up to 512 Mi chars are accepted (a 10 MB message is
 * legitimate data; truncation to the max length happens later, counted).
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

  static List<Entry> read(Path file) {
    String text = decode(file);
    int i = 0;
    while (i < text.length() && Character.isWhitespace(text.charAt(i))) {
      i++;
    }
    if (i == text.length()) {
      throw new DatasetException(
          file
              + ": the file is empty; expected a JSON array of records or"
              + " one JSON record per line");
    }
    return text.charAt(i) == '[' ? readArray(file, text) : readLines(text);
  }

  private static String decode(Path file) {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new DatasetException(file + ": no such file; check the path");
    } catch (IOException e) {
      throw new DatasetException(file + ": cannot read: " + e.getMessage());
    }
    int start =
        bytes.length >= 3
                && (bytes[0] & 0xFF) == 0xEF
                && (bytes[1] & 0xFF) == 0xBB
                && (bytes[2] & 0xFF) == 0xBF
            ? 3
            : 0;
    CharsetDecoder dec =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    try {
      return dec.decode(ByteBuffer.wrap(bytes, start, bytes.length - start)).toString();
    } catch (CharacterCodingException e) {
      int bad = firstInvalidUtf8(bytes, start);
      int line = 1;
      for (int k = 0; k < bad; k++) {
        if (bytes[k] == '\n') {
          line++;
        }
      }
      throw new DatasetException(
          file
              + ":"
              + line
              + ": invalid UTF-8 at byte offset "
              + bad
              + "; the dataset must be UTF-8 (re-save or convert it, e.g. with iconv)");
    }
  }

  /** The offset of the first byte that starts no valid UTF-8 sequence. */
  private static int firstInvalidUtf8(byte[] b, int from) {
    CharsetDecoder dec =
        StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT);
    ByteBuffer in = ByteBuffer.wrap(b, from, b.length - from);
    var out = java.nio.CharBuffer.allocate(b.length + 1);
    var result = dec.decode(in, out, true);
    return result.isError() ? in.position() : b.length;
  }

  private static List<Entry> readArray(Path file, String text) {
    List<Entry> out = new ArrayList<>();
    try (JsonParser p = MAPPER.getFactory().createParser(text)) {
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
        int line = p.currentTokenLocation().getLineNr();
        JsonNode node = MAPPER.readTree(p);
        out.add(new Entry(node, line, null));
      }
      if (p.nextToken() != null) {
        throw new DatasetException(
            file
                + ":"
                + p.currentTokenLocation().getLineNr()
                + ": text after the closing ']' of the record array");
      }
    } catch (JsonProcessingException e) {
      // A broken array cannot be resynchronised, so even with skipping this fails the load.
      throw new DatasetException(
          file
              + ":"
              + e.getLocation().getLineNr()
              + ": bad JSON: "
              + firstLine(e)
              + "; fix the file");
    } catch (IOException e) {
      throw new DatasetException(file + ": cannot read: " + e.getMessage());
    }
    return out;
  }

  private static List<Entry> readLines(String text) {
    List<Entry> out = new ArrayList<>();
    int line = 0;
    int pos = 0;
    while (pos <= text.length()) {
      int nl = text.indexOf('\n', pos);
      int end = nl < 0 ? text.length() : nl;
      line++;
      String s = text.substring(pos, end);
      if (!s.isBlank()) {
        try {
          out.add(new Entry(MAPPER.readTree(s), line, null));
        } catch (JsonProcessingException e) {
          out.add(
              new Entry(
                  null,
                  line,
                  "bad JSON: "
                      + firstLine(e)
                      + " (expected one JSON record per line, or a JSON array)"));
        }
      }
      if (nl < 0) {
        break;
      }
      pos = nl + 1;
    }
    return out;
  }

  private static String firstLine(JsonProcessingException e) {
    String m = e.getOriginalMessage() == null ? "unreadable JSON" : e.getOriginalMessage();
    return m.lines().findFirst().orElse(m);
  }
}
