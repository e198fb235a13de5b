# ks1: NixOS on an OVH/Kimsufi server, ZFS root, legacy BIOS.
{ config, lib, pkgs, ... }:

{
  imports =
    [ ./hardware-configuration.nix
      ./network.nix
    ];

  boot.loader.grub = {
    enable = true;
    efiSupport = true;
    efiInstallAsRemovable = true;
    device = "nodev";
  };
  boot.loader.efi.canTouchEfiVariables = false;
  boot.supportedFilesystems = [ "zfs" ];
  boot.zfs.forceImportRoot = true;

  networking.hostName = "ks1";
  networking.hostId = "8425e349";
  networking.firewall.allowedTCPPorts = [ 80 443 ];

  time.timeZone = "Europe/Paris";

  services.openssh = {
    enable = true;
    settings.PasswordAuthentication = false;
  };
  users.users.root.openssh.authorizedKeys.keys = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@example.org"
  ];

  environment.systemPackages = with pkgs; [ vim htop tmux zfs ];
  services.zfs.autoScrub.enable = lib.mkIf config.boot.zfs.forceImportRoot true;

  # This value determines the NixOS release from which the default
  # settings for stateful data, like file locations and database versions
  # on your system were taken. It's perfectly fine and recommended to leave
  # this value at the release version of the first install of this system.
  system.stateVersion = "24.05"; # Did you read the comment?
}
