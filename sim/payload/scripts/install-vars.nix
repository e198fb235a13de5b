# Part of the nixos-install STAND-IN of nixbook-sim: evaluates the
# configuration with eval.nix (a flake's system with flake-eval.nix) and prints what the installer needs as
# shell assignments.
{ configFile ? "", flakeDir ? "", name ? "", pkgNamesFile ? "", release ? "24.05" }:
let
  b = builtins;
  modulesPath = toString ./modules;
  c =
    if flakeDir != "" then import ./flake-eval.nix { inherit flakeDir name pkgNamesFile release modulesPath; }
    else import ./eval.nix { inherit configFile pkgNamesFile release modulesPath; };
  g = c.boot.loader.grub;
  q = s: "'" + b.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
  flag = v: if v == true then "1" else "";
  devices = (if g.device != "" then [ g.device ] else [ ]) ++ g.devices
    ++ b.concatLists (map (m: m.devices or [ ]) g.mirroredBoots);
  # GRUB's EFI image goes to every mirrored boot's EFI system partition
  # (efiSysMountPoint, default its path), else to boot.loader.efi's.
  efiMounts =
    if g.mirroredBoots == [ ] then [ c.boot.loader.efi.efiSysMountPoint ]
    else map (m: if (m.efiSysMountPoint or null) != null then m.efiSysMountPoint else m.path) g.mirroredBoots;
  efiDevice = mp: if c.fileSystems ? ${mp} then c.fileSystems.${mp}.device or "" else "";
in
b.concatStringsSep "; " [
  "host=${q c.networking.hostName}"
  "grub_enable=${flag g.enable}"
  "grub_devices=${q (b.concatStringsSep " " devices)}"
  "mirror_paths=${q (b.concatStringsSep " " (map (m: m.path) g.mirroredBoots))}"
  "mirrors=${q (b.concatStringsSep " " (map (m: "${m.path}=${b.concatStringsSep "," (m.devices or [ ])}") g.mirroredBoots))}"
  "efi_support=${flag g.efiSupport}"
  "efi_removable=${flag g.efiInstallAsRemovable}"
  "force_install=${flag g.forceInstall}"
  "can_touch=${flag c.boot.loader.efi.canTouchEfiVariables}"
  "efi_mount=${q c.boot.loader.efi.efiSysMountPoint}"
  "efi_mounts=${q (b.concatStringsSep " " efiMounts)}"
  "efi_devices=${q (b.concatStringsSep " " (map (mp: "${mp}=${efiDevice mp}") efiMounts))}"
  "systemd_boot=${flag c.boot.loader.systemd-boot.enable}"
  "root_fs=${flag (c.fileSystems ? "/")}"
  "initrd_secrets=${q (b.concatStringsSep " " (b.attrValues (b.mapAttrs (dest: src: "${dest}=${toString src}") (c.boot.initrd.secrets or { }))))}"
]
