package moetune.app.gui;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

/**
 * The arrows point one way: the engine, templates and datasets know nothing of JavaFX or of the app
 * (command line and GUI), which adapt them through plain listener interfaces.
 */
class ArchitectureTest {

  private static final JavaClasses CLASSES =
      new ClassFileImporter()
          .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
          .importPackages("moetune");

  @Test
  void libraryModulesDoNotDependOnJavaFx() {
    noClasses()
        .that()
        .resideInAnyPackage("moetune.engine..", "moetune.templates..", "moetune.datasets..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage("javafx..")
        .check(CLASSES);
  }

  @Test
  void libraryModulesDoNotDependOnTheApp() {
    noClasses()
        .that()
        .resideInAnyPackage("moetune.engine..", "moetune.templates..", "moetune.datasets..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage("moetune.app..")
        .check(CLASSES);
  }

  @Test
  void theCommandLineDoesNotDependOnTheGuiExceptToLaunchIt() {
    noClasses()
        .that()
        .resideInAPackage("moetune.app.config..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage("moetune.app.gui..", "javafx..")
        .check(CLASSES);
  }

  @Test
  void theAppReachesCudaOnlyThroughTheEngine() {
    // JCuda's global state (its exceptions flag) belongs to the engine's backend code
    noClasses()
        .that()
        .resideInAPackage("moetune.app..")
        .should()
        .dependOnClassesThat()
        .resideInAnyPackage("jcuda..")
        .check(CLASSES);
  }

  @Test
  void importedTheEngine() {
    // guards the rules above against passing vacuously on an empty import
    org.junit.jupiter.api.Assertions.assertTrue(CLASSES.containPackage("moetune.engine.train"));
    org.junit.jupiter.api.Assertions.assertTrue(CLASSES.containPackage("moetune.datasets"));
  }
}
