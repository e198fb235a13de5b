# Evaluates a NixOS configuration.nix and its imports the way the module
# system does (properties mkIf/mkMerge/mkOverride/mkOrder, priorities, list
# concatenation, a lazy `config` fixed point), against stubs for `pkgs` and
# option defaults. The result is the merged configuration as plain data.
#
# nix-instantiate --eval --strict --json eval.nix \
#   --argstr configFile /mnt/etc/nixos/configuration.nix \
#   --argstr modulesPath /path/to/nix/modules [--argstr pkgNamesFile names.json]
{ configFile ? ""
# modulesList replaces configFile by a list of modules, as a flake hands
# them to lib.nixosSystem; specialArgs are its specialArgs.
, modulesList ? null
, specialArgs ? { }
, modulesPath
, pkgNamesFile ? ""
, release ? "24.05"
, system ? "x86_64-linux"
}:
let
  b = builtins;
  lib = import ./lib.nix;
  modulesDir = /. + modulesPath;

  # ---- pkgs: every package is a derivation-shaped stub; JSON shows its outPath.
  hashOf = s: b.substring 0 32 (b.hashString "sha256" s);
  mkPkg = name: rec {
    type = "derivation";
    inherit name system;
    pname = name;
    version = release;
    outPath = "/nix/store/${hashOf name}-${name}";
    drvPath = "/nix/store/${hashOf "drv:${name}"}-${name}.drv";
    outputs = [ "out" ];
    out = mkPkg name;
    meta = { };
    passthru = { };
    override = _: mkPkg name;
    overrideAttrs = _: mkPkg name;
  };
  kernelPackages = name: mkPkg name // {
    kernel = mkPkg "linux-${release}";
    zfs = mkPkg "zfs-kernel";
    zfs_unstable = mkPkg "zfs-kernel-unstable";
    nvidia_x11 = mkPkg "nvidia-x11";
  };
  basePkgNames = [
    "bash" "coreutils" "curl" "git" "gnugrep" "gnused" "htop" "iproute2"
    "jq" "less" "mdadm" "nano" "openssh" "parted" "rsync" "tmux" "vim" "wget"
    "zfs" "zfsStable" "zfsUnstable" "zfs_unstable" "grub2" "grub2_efi" "e2fsprogs"
  ];
  extraPkgNames = if pkgNamesFile == "" then [ ] else b.fromJSON (b.readFile (/. + pkgNamesFile));
  pkgs = b.listToAttrs (map (n: { name = n; value = mkPkg n; }) (basePkgNames ++ extraPkgNames)) // {
    inherit lib system;
    stdenv = mkPkg "stdenv" // {
      hostPlatform = { inherit system; isLinux = true; isx86_64 = true; isAarch64 = false; };
      isLinux = true;
    };
    linuxPackages = kernelPackages "linux-packages";
    linuxPackages_latest = kernelPackages "linux-packages-latest";
    linuxPackages_hardened = kernelPackages "linux-packages-hardened";
    linuxPackages_6_1 = kernelPackages "linux-packages-6.1";
    linuxPackages_6_6 = kernelPackages "linux-packages-6.6";
    linuxKernel = {
      packages = { linux_6_1 = kernelPackages "linux-packages-6.1"; linux_6_6 = kernelPackages "linux-packages-6.6"; };
      kernels = { linux_6_1 = mkPkg "linux-6.1"; linux_6_6 = mkPkg "linux-6.6"; };
    };
    writeText = name: text: mkPkg name;
    writeTextFile = { name, ... }: mkPkg name;
    writeScript = name: text: mkPkg name;
    writeScriptBin = name: text: mkPkg name;
    writeShellScript = name: text: mkPkg name;
    writeShellScriptBin = name: text: mkPkg name;
    writeShellApplication = { name, ... }: mkPkg name;
    runCommand = name: env: cmd: mkPkg name;
    symlinkJoin = { name, ... }: mkPkg name;
    buildEnv = { name, ... }: mkPkg name;
    fetchurl = args: mkPkg (args.name or "source");
    fetchFromGitHub = args: mkPkg "source";
    fetchgit = args: mkPkg "source";
    callPackage = f: args: mkPkg "package";
    python3 = mkPkg "python3" // { withPackages = f: mkPkg "python3-env"; };
  };

  # ---- option defaults the module system would supply, at the lowest priority.
  d = lib.mkOptionDefault;
  defaults = {
    networking = {
      hostName = d "nixos";
      hostId = d null;
      domain = d null;
      useDHCP = d true;
      useNetworkd = d false;
      usePredictableInterfaceNames = d true;
      enableIPv6 = d true;
      defaultGateway = d null;
      defaultGateway6 = d null;
      nameservers = d [ ];
      firewall = { enable = d true; allowedTCPPorts = d [ ]; allowedUDPPorts = d [ ]; };
      interfaces = { };
    };
    services = {
      openssh = {
        enable = d false;
        openFirewall = d true;
        ports = d [ 22 ];
        settings = { PermitRootLogin = d "prohibit-password"; PasswordAuthentication = d true; };
      };
      udev.extraRules = d "";
    };
    systemd.network = {
      enable = d config.networking.useNetworkd;
      networks = { };
      links = { };
    };
    users = { mutableUsers = d true; users = { }; };
    boot = {
      loader = {
        grub = {
          enable = d true;
          device = d "";
          devices = d [ ];
          mirroredBoots = d [ ];
          efiSupport = d false;
          efiInstallAsRemovable = d false;
          zfsSupport = d false;
          forceInstall = d false;
        };
        efi = { canTouchEfiVariables = d false; efiSysMountPoint = d "/boot"; };
        systemd-boot.enable = d false;
      };
      supportedFilesystems = { };
      initrd = {
        supportedFilesystems = { };
        availableKernelModules = d [ ];
        kernelModules = d [ ];
        includeDefaultModules = d true;
      };
      zfs = { forceImportRoot = d true; devNodes = d "/dev/disk/by-id"; };
      kernelPackages = d pkgs.linuxPackages;
      kernelModules = d [ ];
      kernelParams = d [ ];
      extraModulePackages = d [ ];
    };
    hardware = {
      enableRedistributableFirmware = d false;
      enableAllFirmware = d false;
      cpu.intel.updateMicrocode = d false;
      cpu.amd.updateMicrocode = d false;
    };
    fileSystems = { };
    swapDevices = d [ ];
    environment.systemPackages = d [ ];
    nixpkgs.hostPlatform = d system;
    time.timeZone = d null;
    i18n.defaultLocale = d "en_US.UTF-8";
  };

  # ---- modules: the closure of configuration.nix over `imports`.
  args = {
    inherit config lib pkgs modulesPath;
    options = { };
    utils = { };
  } // specialArgs // { inherit specialArgs; };
  underModules = p: lib.hasPrefix (toString modulesDir + "/") (toString p);
  # nixpkgs' own modules are not here: the ones this directory lacks are empty.
  load = p: if underModules p && !(b.pathExists p) then { } else import p;
  apply = m: if b.isFunction m then m args else m;
  isFile = m: b.isPath m || (b.isString m && lib.hasPrefix "/" m);
  toItem = parent: i: m:
    if isFile m then
      { key = "file:${toString m}"; file = toString m; applied = apply (load (/. + toString m)); }
    else
      { key = "${parent.key}#${toString i}"; file = parent.file; applied = apply m; };
  importsOf = item:
    let r = item.applied; in
    if b.isAttrs r then r.imports or [ ]
    else throw "module ${item.file} is a ${b.typeOf r}, not a function or an attribute set";
  modules = b.genericClosure {
    startSet =
      if modulesList != null then lib.imap0 (toItem { key = "flake"; file = "<flake>"; }) modulesList
      else [ (toItem { key = "root"; file = configFile; } 0 (/. + configFile)) ];
    operator = item: lib.imap0 (toItem item) (importsOf item);
  };
  settingsOf = r:
    if r ? config || r ? options then r.config or { }
    else b.removeAttrs r [ "imports" "_file" "key" "disabledModules" "meta" "_class" "freeformType" ];

  # ---- merging, as lib/modules.nix does it without option declarations:
  # an attribute set is a namespace and merges per attribute, a list
  # concatenates, anything else must agree unless a priority decides.
  normalize = file: conds: prio: order: v:
    let t = if b.isAttrs v && v ? _type then v._type else ""; in
    if t == "merge" then lib.concatMap (normalize file conds prio order) v.contents
    else if t == "if" then normalize file (conds ++ [ v.condition ]) prio order v.content
    else if t == "override" then normalize file conds (if prio == null then v.priority else prio) order v.content
    else if t == "order" then normalize file conds prio (if order == null then v.priority else order) v.content
    else [ { inherit file conds prio order; value = v; } ];
  prioOf = def: if def.prio == null then 100 else def.prio;
  orderOf = def: if def.order == null then 1000 else def.order;
  isNamespace = v: b.isAttrs v && !(v ? _type) && !(v ? outPath);
  undefined = { _type = "undefined"; };
  isUndefined = v: b.isAttrs v && v ? _type && v._type == "undefined";
  # Options whose list form nixpkgs coerces into an attribute set of booleans.
  coercedToAttrs = [ "boot.supportedFilesystems" "boot.initrd.supportedFilesystems" ];
  coerce = path: def:
    if b.isList def.value && b.elem (b.concatStringsSep "." path) coercedToAttrs
    then def // { value = b.listToAttrs (map (n: { name = n; value = true; }) def.value); }
    else def;
  isLines = path: path != [ ] && lib.hasPrefix "extra" (lib.last path);
  showValue = v:
    if b.isString v then ''"${v}"''
    else if b.isBool v then lib.boolToString v
    else if b.isInt v || b.isFloat v then toString v
    else if v == null then "null"
    else "a ${b.typeOf v}";

  mergeDefs = path: defs:
    if b.all (def: isNamespace def.value) defs then mergeNamespace path defs
    else mergeLeaf path defs;
  mergeNamespace = path: defs:
    b.zipAttrsWith
      (name: lists: mergeDefs (path ++ [ name ]) (map (coerce (path ++ [ name ])) (b.concatLists lists)))
      (map (def: b.mapAttrs (_: normalize def.file def.conds def.prio def.order) def.value) defs);
  mergeLeaf = path: defs:
    let
      active = b.filter (def: b.all (c: c) def.conds) defs;
      best = b.foldl' (m: def: if prioOf def < m then prioOf def else m) 9999 active;
      winners = b.filter (def: prioOf def == best) active;
      sorted = b.sort (x: y: orderOf x < orderOf y) winners;
      first = (b.head winners).value;
      name = b.concatStringsSep "." path;
    in
    if winners == [ ] then undefined
    else if b.all (def: isNamespace def.value) winners then mergeNamespace path winners
    else if b.all (def: b.isList def.value) winners then b.concatLists (map (def: def.value) sorted)
    else if b.length winners == 1 then first
    else if isLines path && b.all (def: b.isString def.value) winners then b.concatStringsSep "\n" (map (def: def.value) sorted)
    else if b.all (def: def.value == first) winners then first
    else throw "The option `${name}' has conflicting definition values:${
      lib.concatMapStrings (def: "\n- In `${def.file}': ${showValue def.value}") winners}";

  allDefs =
    normalize "<defaults>" [ ] null null defaults
    ++ lib.concatMap (item: normalize item.file [ ] null null (settingsOf item.applied)) modules;
  config = mergeDefs [ ] allDefs;

  # ---- plain data for JSON: no functions, no paths copied to the store.
  plain = v:
    if b.isAttrs v then
      if v ? outPath then toString v.outPath
      else if v ? _type then
        if v._type == "if" then (if v.condition then plain v.content else null)
        else if v._type == "override" || v._type == "order" then plain v.content
        else if v._type == "merge" then map plain v.contents
        else null
      else b.mapAttrs (_: plain) (lib.filterAttrs (_: x: !(isUndefined x)) v)
    else if b.isList v then map plain v
    else if b.isFunction v then "<function>"
    else if b.isPath v then toString v
    else v;
in
plain config
