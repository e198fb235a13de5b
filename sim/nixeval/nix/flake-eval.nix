# Evaluates a flake's nixosConfigurations.<name> offline with Nix 2.8, whose
# flakes are experimental and would fetch their inputs: flake.nix is
# imported as a plain file and its outputs are called with stub inputs.
# Every input is a stand-in for nixpkgs whose lib.nixosSystem returns the
# modules it is given; those are evaluated as eval.nix evaluates a
# configuration.nix. Modules an input itself provides (such as
# inputs.disko.nixosModules.disko) are empty: only the flake's own files
# and nixpkgs-style settings are judged.
#
# nix-instantiate --eval --strict --json flake-eval.nix \
#   --argstr flakeDir /mnt/etc/nixos --argstr name ks1 \
#   --argstr modulesPath /path/to/nix/modules [--argstr pkgNamesFile names.json]
{ flakeDir
, name
, modulesPath
, pkgNamesFile ? ""
, release ? "24.05"
}:
let
  b = builtins;
  lib = import ./lib.nix;
  dir = /. + flakeDir;
  flake = import (dir + "/flake.nix");
  emptyModules = { };
  # A flake input as the stub knows it: nixpkgs' lib with nixosSystem, and
  # empty module sets for inputs that are not nixpkgs.
  stubInput = inputName: {
    outPath = "/nix/store/${b.substring 0 32 (b.hashString "sha256" inputName)}-source";
    lib = lib // {
      nixosSystem = args: { _nixbookSystem = args; };
    };
    nixosModules = b.mapAttrs (_: _: emptyModules) { default = null; };
    inputs = { };
  };
  declared = b.attrNames (flake.inputs or { });
  inputs = b.listToAttrs (map (n: { name = n; value = stubInput n; }) (declared ++ [ "nixpkgs" ]));
  self = outputs // { outPath = toString dir; inherit inputs; };
  outputs = flake.outputs (inputs // { inherit self; });
  systems = outputs.nixosConfigurations or (throw "flake ${flakeDir} has no nixosConfigurations");
  sys = systems.${name} or (throw "flake ${flakeDir} has no nixosConfigurations.${name} (it has: ${b.concatStringsSep ", " (b.attrNames systems)})");
  args = sys._nixbookSystem or (throw "nixosConfigurations.${name} of ${flakeDir} is not made with nixpkgs.lib.nixosSystem");
in
import ./eval.nix {
  inherit modulesPath pkgNamesFile release;
  modulesList = args.modules or [ ];
  specialArgs = args.specialArgs or { };
}
