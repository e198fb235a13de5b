package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// fatFiles lists the regular files of a FAT12, FAT16 or FAT32 file system,
// as UEFI firmware sees them: paths from the root with backslashes
// (\EFI\BOOT\BOOTX64.EFI), each name its long name where it has one. It
// reads the file system as it lies on the device, so it needs no kernel
// support for vfat.
func fatFiles(r io.ReaderAt) ([]string, error) {
	fs, err := openFAT(r)
	if err != nil {
		return nil, err
	}
	var files []string
	var walk func(dir []byte, prefix string, depth int) error
	walk = func(dir []byte, prefix string, depth int) error {
		if depth > 16 {
			return fmt.Errorf("directories nested deeper than 16 under %s", prefix)
		}
		for _, e := range fatEntries(dir) {
			p := prefix + `\` + e.name
			if !e.dir {
				files = append(files, p)
				continue
			}
			sub, err := fs.chain(e.cluster)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if err := walk(sub, p, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	root, err := fs.root()
	if err != nil {
		return nil, err
	}
	return files, walk(root, "", 0)
}

// fat is an open FAT file system: the geometry of its boot sector.
type fat struct {
	r           io.ReaderAt
	bits        int // 12, 16 or 32
	sectorSize  int64
	clusterSize int64
	fatStart    int64 // byte offset of the first FAT
	rootStart   int64 // FAT12/16: byte offset of the fixed root directory
	rootSize    int64
	dataStart   int64 // byte offset of cluster 2
	clusters    uint32
	rootCluster uint32 // FAT32
	fatBytes    int64
}

// maxFATDir bounds what a directory may take: an ESP's hold a few entries.
const maxFATDir = 16 << 20

func openFAT(r io.ReaderAt) (*fat, error) {
	bs := make([]byte, 512)
	if _, err := r.ReadAt(bs, 0); err != nil {
		return nil, fmt.Errorf("read the boot sector: %w", err)
	}
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(bs[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(bs[o:])) }
	if bs[510] != 0x55 || bs[511] != 0xaa {
		return nil, errors.New("no FAT boot sector (signature 55aa missing)")
	}
	f := &fat{r: r, sectorSize: le16(11)}
	perCluster := int64(bs[13])
	reserved, fats, rootEntries := le16(14), int64(bs[16]), le16(17)
	total := le16(19)
	if total == 0 {
		total = le32(32)
	}
	fatSectors := le16(22)
	if fatSectors == 0 {
		fatSectors = le32(36)
	}
	switch f.sectorSize {
	case 512, 1024, 2048, 4096:
	default:
		return nil, fmt.Errorf("no FAT file system (sector size %d)", f.sectorSize)
	}
	if perCluster == 0 || perCluster&(perCluster-1) != 0 || reserved == 0 || fats == 0 || fatSectors == 0 || total == 0 {
		return nil, errors.New("no FAT file system (boot sector geometry is not FAT's)")
	}
	rootSectors := (rootEntries*32 + f.sectorSize - 1) / f.sectorSize
	firstData := reserved + fats*fatSectors + rootSectors
	if firstData >= total {
		return nil, errors.New("no FAT file system (no data area)")
	}
	f.clusterSize = perCluster * f.sectorSize
	f.fatStart = reserved * f.sectorSize
	f.fatBytes = fatSectors * f.sectorSize
	f.rootStart = (reserved + fats*fatSectors) * f.sectorSize
	f.rootSize = rootSectors * f.sectorSize
	f.dataStart = firstData * f.sectorSize
	f.clusters = uint32((total - firstData) / perCluster)
	switch {
	case f.clusters < 4085:
		f.bits = 12
	case f.clusters < 65525:
		f.bits = 16
	default:
		f.bits = 32
		f.rootCluster = uint32(le32(44))
	}
	return f, nil
}

// root is the root directory's data.
func (f *fat) root() ([]byte, error) {
	if f.bits == 32 {
		return f.chain(f.rootCluster)
	}
	buf := make([]byte, f.rootSize)
	if _, err := f.r.ReadAt(buf, f.rootStart); err != nil {
		return nil, fmt.Errorf("read the root directory: %w", err)
	}
	return buf, nil
}

// next is the FAT's entry for cluster n: the next cluster of its chain.
func (f *fat) next(n uint32) (uint32, error) {
	var off int64
	size := 2
	switch f.bits {
	case 12:
		off = int64(n) + int64(n)/2
	case 16:
		off = int64(n) * 2
	default:
		off, size = int64(n)*4, 4
	}
	if off+int64(size) > f.fatBytes {
		return 0, fmt.Errorf("cluster %d is outside the FAT", n)
	}
	buf := make([]byte, size)
	if _, err := f.r.ReadAt(buf, f.fatStart+off); err != nil {
		return 0, err
	}
	switch f.bits {
	case 12:
		v := uint32(binary.LittleEndian.Uint16(buf))
		if n%2 == 1 {
			return v >> 4, nil
		}
		return v & 0xfff, nil
	case 16:
		return uint32(binary.LittleEndian.Uint16(buf)), nil
	}
	return binary.LittleEndian.Uint32(buf) & 0x0fffffff, nil
}

// chain reads the clusters of a chain starting at first.
func (f *fat) chain(first uint32) ([]byte, error) {
	end := uint32(0x0ffffff8)
	switch f.bits {
	case 12:
		end = 0xff8
	case 16:
		end = 0xfff8
	}
	var out []byte
	seen := map[uint32]bool{}
	for n := first; n < end; {
		if n < 2 || n >= f.clusters+2 {
			return nil, fmt.Errorf("broken cluster chain (cluster %d)", n)
		}
		if seen[n] {
			return nil, errors.New("cluster chain loops")
		}
		seen[n] = true
		if int64(len(out)) >= maxFATDir {
			return nil, errors.New("directory larger than 16 MiB")
		}
		buf := make([]byte, f.clusterSize)
		if _, err := f.r.ReadAt(buf, f.dataStart+int64(n-2)*f.clusterSize); err != nil {
			return nil, err
		}
		out = append(out, buf...)
		next, err := f.next(n)
		if err != nil {
			return nil, err
		}
		n = next
	}
	return out, nil
}

// fatEntry is a directory entry: a file or a subdirectory.
type fatEntry struct {
	name    string
	dir     bool
	cluster uint32
}

// fatEntries reads a directory's entries, long names included (checked
// against their short entry's checksum, as FAT drivers do), without "."
// and "..", deleted entries and the volume label.
func fatEntries(dir []byte) []fatEntry {
	var out []fatEntry
	var long []uint16
	var sum byte
	longOK := false
	for off := 0; off+32 <= len(dir); off += 32 {
		e := dir[off : off+32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0xe5 {
			longOK = false
			continue
		}
		if e[11] == 0x0f { // a piece of a long name, last piece first
			seq := int(e[0] & 0x1f)
			if e[0]&0x40 != 0 {
				long, sum, longOK = make([]uint16, 13*seq), e[13], seq > 0
			}
			if !longOK || seq == 0 || 13*seq > len(long) || e[13] != sum {
				longOK = false
				continue
			}
			at := 13 * (seq - 1)
			for i, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				long[at+i] = binary.LittleEndian.Uint16(e[o:])
			}
			continue
		}
		attr := e[11]
		short := e[:11]
		name := ""
		if longOK && shortSum(short) == sum {
			name = longName(long)
		}
		longOK = false
		if attr&0x08 != 0 { // the volume label
			continue
		}
		if name == "" {
			name = shortName(short, e[12])
		}
		if name == "." || name == ".." {
			continue
		}
		cluster := uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
		out = append(out, fatEntry{name: name, dir: attr&0x10 != 0, cluster: cluster})
	}
	return out
}

func shortSum(short []byte) byte {
	var s byte
	for _, c := range short {
		s = (s>>1 | s<<7) + c
	}
	return s
}

func longName(units []uint16) string {
	for i, u := range units {
		if u == 0 {
			units = units[:i]
			break
		}
	}
	return string(utf16.Decode(units))
}

// shortName is an 8.3 name; the flags of byte 12 (as Windows NT writes
// them) say whether its base and extension are shown in lower case.
func shortName(short []byte, flags byte) string {
	b := make([]byte, 11)
	copy(b, short)
	if b[0] == 0x05 {
		b[0] = 0xe5
	}
	base := strings.TrimRight(string(b[:8]), " ")
	ext := strings.TrimRight(string(b[8:]), " ")
	if flags&0x08 != 0 {
		base = strings.ToLower(base)
	}
	if flags&0x10 != 0 {
		ext = strings.ToLower(ext)
	}
	if ext == "" {
		return base
	}
	return base + "." + ext
}
