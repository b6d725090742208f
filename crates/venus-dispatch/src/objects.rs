//! The context's object table: guest object id <-> host handle, with the object type and the
//! device an object belongs to.
//!
//! Guest ids are chosen by the client (`venus-wire-format.md` §5): a new id must be non-zero and
//! unused; an id used as input must exist with the expected `VkObjectType`.

use std::collections::HashMap;
use std::sync::RwLock;

use venus_host::lower::HandleMap;

/// One tracked object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Object {
    /// `VkObjectType`.
    pub ty: i32,
    pub host: u64,
    /// The guest id of the `VkDevice` it belongs to (device-level objects).
    pub device: Option<u64>,
}

#[derive(Default)]
struct Maps {
    by_guest: HashMap<u64, Object>,
    by_host: HashMap<(i32, u64), u64>,
}

/// Object table shared by the context's channels (socket thread and ring threads).
#[derive(Default)]
pub struct Objects {
    maps: RwLock<Maps>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ObjectError {
    #[error("object id 0 cannot name a new object")]
    NullId,
    #[error("object id {0} is already in use")]
    InUse(u64),
}

impl Objects {
    pub fn get(&self, id: u64) -> Option<Object> {
        self.read().by_guest.get(&id).copied()
    }

    /// Binds a new guest id. Re-binding an id to the very same object is accepted (the client
    /// may repeat `vkEnumeratePhysicalDevices`).
    pub fn insert(&self, id: u64, obj: Object) -> Result<(), ObjectError> {
        if id == 0 {
            return Err(ObjectError::NullId);
        }
        let mut m = self.write();
        if let Some(old) = m.by_guest.get(&id) {
            if *old == obj {
                return Ok(());
            }
            return Err(ObjectError::InUse(id));
        }
        m.by_guest.insert(id, obj);
        m.by_host.insert((obj.ty, obj.host), id);
        Ok(())
    }

    pub fn remove(&self, id: u64) -> Option<Object> {
        let mut m = self.write();
        let obj = m.by_guest.remove(&id)?;
        if m.by_host.get(&(obj.ty, obj.host)) == Some(&id) {
            m.by_host.remove(&(obj.ty, obj.host));
        }
        Some(obj)
    }

    /// Forgets every object of `device` (after `vkDestroyDevice`).
    pub fn remove_device_objects(&self, device: u64) {
        let mut m = self.write();
        let gone: Vec<u64> = m
            .by_guest
            .iter()
            .filter(|(_, o)| o.device == Some(device))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(o) = m.by_guest.remove(&id) {
                m.by_host.remove(&(o.ty, o.host));
            }
        }
    }

    /// The guest id bound to a host handle of `object_type`.
    pub fn guest_of(&self, object_type: i32, host: u64) -> Option<u64> {
        self.read().by_host.get(&(object_type, host)).copied()
    }

    pub fn len(&self) -> usize {
        self.read().by_guest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.maps.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.maps.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl HandleMap for Objects {
    fn host(&self, object_type: i32, id: u64) -> Option<u64> {
        self.read()
            .by_guest
            .get(&id)
            .filter(|o| o.ty == object_type)
            .map(|o| o.host)
    }
    fn guest(&self, object_type: i32, host: u64) -> Option<u64> {
        self.read().by_host.get(&(object_type, host)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_typed_and_unique() {
        let t = Objects::default();
        let buf = Object {
            ty: 9,
            host: 0x1000,
            device: Some(3),
        };
        t.insert(16, buf).unwrap();
        assert_eq!(
            t.insert(
                16,
                Object {
                    ty: 10,
                    host: 0x2000,
                    device: Some(3)
                }
            ),
            Err(ObjectError::InUse(16))
        );
        assert_eq!(t.insert(0, buf), Err(ObjectError::NullId));
        t.insert(16, buf).unwrap(); // same binding again is fine
        assert_eq!(t.host(9, 16), Some(0x1000));
        assert_eq!(t.host(10, 16), None, "wrong object type");
        assert_eq!(t.guest(9, 0x1000), Some(16));
        t.insert(
            17,
            Object {
                ty: 10,
                host: 0x3000,
                device: Some(4),
            },
        )
        .unwrap();
        t.remove_device_objects(3);
        assert_eq!(t.get(16), None);
        assert_eq!(t.len(), 1);
    }
}
