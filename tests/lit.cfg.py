# lit configuration for dlc's golden IR and diagnostic tests.
import os
import lit.formats

config.name = "dlc"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".dl", ".ir"]
config.test_source_root = os.path.dirname(__file__)
# own runners
config.excludes = ["unit", "fuzz", "inputs", "corpus", "exec", "gradcheck", "train",
                   "stochastic"]

params = lit_config.params
config.substitutions.append(("%dlc", params.get("dlc", "dlc")))
config.substitutions.append(("FileCheck", params.get("filecheck", "FileCheck")))
config.substitutions.append(("%not", params.get("not", "not")))
config.substitutions.append(("%src", params.get("source_dir", ".")))
config.environment["LC_ALL"] = "C"
