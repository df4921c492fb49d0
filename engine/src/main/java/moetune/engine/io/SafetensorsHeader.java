package moetune.engine.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import moetune.engine.hf.CheckpointException;

/**
 * A parsed and validated safetensors header: the {@code __metadata__} map and the tensor entries in
 * data-offset order.
 *
 * <p>File layout: 8 bytes little-endian unsigned header length N, N bytes of UTF-8 JSON (padded
 * with spaces), then the data area. The entries' byte ranges must tile the data area exactly, as
 * the reference implementation requires: sorted by offset the first starts at 0, each starts where
 * the previous ended, and the last ends at the end of the file. Each range's length must equal the
 * shape's element count times the type's width. Anything else is refused with one {@link
 * CheckpointException} naming the file and the tensor.
 */
record SafetensorsHeader(Map<String, String> metadata, List<SafetensorsEntry> entries, long n) {

  /** The reference implementation's limit; a larger "header" means this is not safetensors. */
  static final long MAX_HEADER_BYTES = 100_000_000L;

  static final String METADATA_KEY = "__metadata__";

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

  /**
   * Validates the header length read from the first 8 bytes against the file size.
   *
   * @return N, the header length in bytes
   */
  static long checkLength(Path file, long fileSize, long n) {
    if (fileSize < 8) {
      throw new CheckpointException(
          file,
          "header",
          "file is "
              + fileSize
              + " bytes, shorter than the 8-byte header length; it is truncated or not a"
              + " safetensors file");
    }
    if (n < 2 || n > MAX_HEADER_BYTES) {
      throw new CheckpointException(
          file,
          "header",
          "length "
              + Long.toUnsignedString(n)
              + " is outside [2, "
              + MAX_HEADER_BYTES
              + "]; this is not a safetensors file or its first 8 bytes are damaged");
    }
    if (8 + n > fileSize) {
      throw new CheckpointException(
          file,
          "header",
          "length "
              + n
              + " runs past the end of the "
              + fileSize
              + "-byte file; the file is truncated");
    }
    return n;
  }

  /**
   * Parses and validates the JSON header.
   *
   * @param json the N header bytes
   * @param dataLength bytes after the header (file size - 8 - N)
   */
  static SafetensorsHeader parse(Path file, ByteBuffer json, long dataLength) {
    long n = json.remaining();
    String text = decodeUtf8(file, json);
    String trimmed = text.stripLeading();
    if (!trimmed.startsWith("{")) {
      throw new CheckpointException(file, "header", "JSON does not start with '{'");
    }
    JsonNode root;
    try {
      root = JSON.readTree(text);
    } catch (JsonProcessingException e) {
      throw new CheckpointException(file, "header", "not valid JSON: " + e.getOriginalMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new CheckpointException(file, "header", "JSON is not an object");
    }
    Map<String, String> metadata = Map.of();
    List<SafetensorsEntry> entries = new ArrayList<>();
    for (Map.Entry<String, JsonNode> f : root.properties()) {
      if (f.getKey().equals(METADATA_KEY)) {
        metadata = parseMetadata(file, f.getValue());
      } else {
        entries.add(parseEntry(file, f.getKey(), f.getValue()));
      }
    }
    entries.sort(
        Comparator.comparingLong(SafetensorsEntry::begin).thenComparingLong(SafetensorsEntry::end));
    checkTiling(file, entries, dataLength);
    return new SafetensorsHeader(metadata, Collections.unmodifiableList(entries), n);
  }

  private static String decodeUtf8(Path file, ByteBuffer json) {
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(json)
          .toString();
    } catch (CharacterCodingException e) {
      throw new CheckpointException(file, "header", "not valid UTF-8");
    }
  }

  private static Map<String, String> parseMetadata(Path file, JsonNode node) {
    if (!node.isObject()) {
      throw new CheckpointException(
          file, METADATA_KEY, "must be an object of string values, got " + node.getNodeType());
    }
    Map<String, String> m = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> f : node.properties()) {
      if (!f.getValue().isTextual()) {
        throw new CheckpointException(
            file,
            METADATA_KEY,
            "value of '" + f.getKey() + "' must be a string, got " + f.getValue().getNodeType());
      }
      m.put(f.getKey(), f.getValue().textValue());
    }
    return Collections.unmodifiableMap(m);
  }

  private static SafetensorsEntry parseEntry(Path file, String name, JsonNode node) {
    String what = CheckpointException.tensor(name);
    if (!node.isObject()) {
      throw new CheckpointException(
          file, what, "header entry must be an object with dtype, shape and data_offsets");
    }
    JsonNode dt = node.get("dtype");
    if (dt == null || !dt.isTextual()) {
      throw new CheckpointException(file, what, "'dtype' is missing or not a string");
    }
    SafetensorsDtype dtype = SafetensorsDtype.byName(dt.textValue());
    if (dtype == null) {
      throw new CheckpointException(
          file,
          what,
          "unknown dtype '"
              + dt.textValue()
              + "'; safetensors defines "
              + SafetensorsDtype.allNames());
    }
    long[] shape = longArray(file, what, node.get("shape"), "shape", -1);
    long[] offsets = longArray(file, what, node.get("data_offsets"), "data_offsets", 2);
    long begin = offsets[0];
    long end = offsets[1];
    if (end < begin) {
      throw new CheckpointException(
          file, what, "data_offsets [" + begin + ", " + end + "] end before they begin");
    }
    long numel;
    long bytes;
    try {
      numel = 1;
      for (long d : shape) {
        numel = Math.multiplyExact(numel, d);
      }
      bytes = dtype.byteSize(numel);
    } catch (ArithmeticException e) {
      throw new CheckpointException(
          file, what, "shape " + java.util.Arrays.toString(shape) + " overflows a 64-bit size");
    }
    if (bytes < 0) {
      throw new CheckpointException(
          file,
          what,
          numel + " elements of " + dtype + " (" + dtype.bits() + " bits) are not whole bytes");
    }
    if (bytes != end - begin) {
      throw new CheckpointException(
          file,
          what,
          "shape "
              + java.util.Arrays.toString(shape)
              + " of "
              + dtype
              + " needs "
              + bytes
              + " bytes but data_offsets ["
              + begin
              + ", "
              + end
              + "] hold "
              + (end - begin));
    }
    return new SafetensorsEntry(name, dtype, shape, begin, end);
  }

  /** A JSON array of non-negative integers that fit in a long; {@code length < 0}: any length. */
  private static long[] longArray(Path file, String what, JsonNode a, String key, int length) {
    if (a == null || !a.isArray()) {
      throw new CheckpointException(file, what, "'" + key + "' is missing or not an array");
    }
    if (length >= 0 && a.size() != length) {
      throw new CheckpointException(
          file, what, "'" + key + "' must have " + length + " entries, has " + a.size());
    }
    long[] out = new long[a.size()];
    for (int i = 0; i < out.length; i++) {
      JsonNode v = a.get(i);
      if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
        throw new CheckpointException(
            file, what, "'" + key + "' entry " + i + " (" + v + ") is not a non-negative integer");
      }
      out[i] = v.longValue();
    }
    return out;
  }

  /** Sorted entries must cover [0, dataLength) exactly: no gap, no overlap, nothing after. */
  private static void checkTiling(Path file, List<SafetensorsEntry> sorted, long dataLength) {
    long expect = 0;
    SafetensorsEntry prev = null;
    for (SafetensorsEntry e : sorted) {
      String what = CheckpointException.tensor(e.name());
      if (e.begin() < expect) {
        throw new CheckpointException(
            file,
            what,
            "data_offsets ["
                + e.begin()
                + ", "
                + e.end()
                + "] overlap tensor '"
                + prev.name()
                + "' ["
                + prev.begin()
                + ", "
                + prev.end()
                + "]");
      }
      if (e.begin() > expect) {
        throw new CheckpointException(
            file,
            what,
            "data_offsets begin at "
                + e.begin()
                + " leaving a "
                + (e.begin() - expect)
                + "-byte hole after "
                + (prev == null ? "the header" : "tensor '" + prev.name() + "'")
                + "; tensors must be packed back to back");
      }
      if (e.end() > dataLength) {
        throw new CheckpointException(
            file,
            what,
            "data_offsets ["
                + e.begin()
                + ", "
                + e.end()
                + "] run past the "
                + dataLength
                + "-byte data area; the file is truncated");
      }
      expect = e.end();
      prev = e;
    }
    if (expect != dataLength) {
      throw new CheckpointException(
          file,
          prev == null ? "header" : CheckpointException.tensor(prev.name()),
          (dataLength - expect)
              + " bytes follow the last tensor's data; the header does not describe the whole"
              + " file");
    }
  }
}
