package moetune.app.gui;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javafx.application.Platform;
import javafx.scene.Scene;
import javafx.scene.image.PixelReader;
import javafx.scene.image.WritableImage;
import javax.imageio.ImageIO;

/** Saves a scene as a PNG under app/target/screenshots/ for review. */
public final class Screenshots {

  public static final Path DIR = Path.of("target", "screenshots");

  private Screenshots() {}

  /** Snapshots {@code scene} on the FX thread and writes {@code DIR/name.png}; returns it. */
  public static Path save(Scene scene, String name) throws Exception {
    CompletableFuture<WritableImage> snap = new CompletableFuture<>();
    Platform.runLater(
        () -> {
          try {
            snap.complete(scene.snapshot(null));
          } catch (RuntimeException e) {
            snap.completeExceptionally(e);
          }
        });
    WritableImage img = snap.get(30, TimeUnit.SECONDS);
    int w = (int) img.getWidth();
    int h = (int) img.getHeight();
    BufferedImage out = new BufferedImage(w, h, BufferedImage.TYPE_INT_ARGB);
    PixelReader r = img.getPixelReader();
    for (int y = 0; y < h; y++) {
      for (int x = 0; x < w; x++) {
        out.setRGB(x, y, r.getArgb(x, y));
      }
    }
    Files.createDirectories(DIR);
    Path file = DIR.resolve(name + ".png");
    if (!ImageIO.write(out, "png", file.toFile())) {
      throw new IOException("no PNG writer for " + file);
    }
    return file;
  }
}
