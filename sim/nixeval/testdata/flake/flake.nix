# A user's flake laid over testdata/ovh-zfs: ks1 is its configuration.nix
# and one module of the flake's own; an input other than nixpkgs gives a
# module of its own; nixbook's host folder is imported as a directory.
{
  description = "servers";
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    sops-nix.url = "github:Mic92/sops-nix";
  };
  outputs = { self, nixpkgs, ... }@inputs: {
    nixosConfigurations.ks1 = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      specialArgs = { inherit inputs; };
      modules = [
        ./configuration.nix
        inputs.sops-nix.nixosModules.default
        ({ inputs, lib, ... }: { time.timeZone = "Europe/Paris"; })
      ];
    };
    nixosConfigurations.locked-out = nixpkgs.lib.nixosSystem {
      system = "x86_64-linux";
      modules = [
        ./configuration.nix
        ({ lib, ... }: { services.openssh.enable = lib.mkForce false; })
      ];
    };
  };
}
